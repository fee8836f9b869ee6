-- footfall: apply site parts of a WriteBatch in one call.
--
-- On a Redis Cluster a call holds one site's part (every key of a site shares its
-- `{site}` hash tag, so one slot); on a single server a call holds many sites' parts, so
-- the cost of a call is paid once for them all. KEYS and ARGV are read front to back by
-- two cursors; the layout is written by `encode_call` in apply.rs:
--
--   ARGV: seq, token_ttl_ms, n_parts, then per part:
--         n_counters, then per counter: by, deadline
--         n_sketches, then per sketch: n_elements, deadline, element...
--         n_sets,     then per set:    n_elements, cap, deadline, has_spill ('1'/'0'),
--                                      element...
--         n_groups,   then per group:  n_counters, n_touches,
--                                      per counter: deadline,
--                                      per touch: has_previous ('1'/'0'), deadline
--   KEYS: the token key, then per part: counter keys, sketch keys, per set: its key and,
--         when has_spill, its spill sketch's key; then per group: its counter keys, then
--         per touch the marker key and, when has_previous, the previous marker key.
--
-- A deadline is absolute Unix milliseconds, or '' for "never expires".
-- Returns the number of visits started (0 for a call that had run already).
--
-- Idempotency: the token key belongs to one writer's lane (and, on a Cluster, to the
-- call's site) and holds the `seq` of the last call of that lane applied there. A lane
-- sends its calls one after another with growing `seq`, and sends a call again (same
-- `seq`) only when it cannot know whether the first one ran. So a call whose `seq` (or a
-- later one) is already there ran before, or is a late copy of a call the lane gave up
-- on: it changes nothing and answers 0. One command records the number and reads the
-- last one; the script is atomic, so the number and the writes it guards land together
-- or not at all (Redis refuses a script's first write when out of memory: this one).

local k, a = 0, 0
local function next_key() k = k + 1; return KEYS[k] end
local function next_arg() a = a + 1; return ARGV[a] end

local token, seq_text, token_ttl = next_key(), next_arg(), next_arg()
local seq = tonumber(seq_text)
local recorded = redis.call('SET', token, seq_text, 'PX', token_ttl, 'GET')
if recorded and tonumber(recorded) and tonumber(recorded) >= seq then
  if tonumber(recorded) > seq then
    redis.call('SET', token, recorded, 'PX', token_ttl)
  end
  return 0
end

-- Counters: their deadline is set by the write that creates them (see below).
local function add_to_counter(name, by, deadline)
  if redis.call('INCRBY', name, by) == tonumber(by) and deadline ~= '' then
    redis.call('PEXPIREAT', name, deadline)
  end
end

local started_total = 0
for _ = 1, tonumber(next_arg()) do
  -- Counters: increments. A counter's deadline is set by the write that creates it (its
  -- value then equals the increment) and left alone after: a period's deadline does not
  -- move, and skipping the call halves the commands per counter.
  for _ = 1, tonumber(next_arg()) do
    local name = next_key()
    local by = next_arg()
    add_to_counter(name, by, next_arg())
  end

  -- Sketches: PFADD in chunks, because unpack() is bounded by Lua's C stack (~8000). A
  -- sketch's deadline, like a counter's, is set by the write that creates it: `NX` leaves a
  -- deadline already there alone, so nothing needs to know whether the key existed.
  for _ = 1, tonumber(next_arg()) do
    local name, n = next_key(), tonumber(next_arg())
    local deadline = next_arg()
    local first, last = a + 1, a + n
    if n == 0 then
      redis.call('PFADD', name) -- creates an empty sketch, like the memory store
    end
    for from = first, last, 1000 do
      redis.call('PFADD', name, unpack(ARGV, from, math.min(from + 999, last)))
    end
    a = last
    if deadline ~= '' then
      redis.call('PEXPIREAT', name, deadline, 'NX')
    end
  end

  -- Bounded sets: SADD while the set holds fewer than `cap` entries. An id that is not a
  -- member and finds the set full is refused, and the empty string is added as the overflow
  -- mark: no 16-byte id can equal it, and kept inside the set it shares the set's slot and
  -- TTL, is copied with it, and takes one of the `cap` places (so SCARD is all the check a
  -- write needs). Once marked, a set stays marked.
  for _ = 1, tonumber(next_arg()) do
    local name, n = next_key(), tonumber(next_arg())
    local cap = math.max(1, tonumber(next_arg()))
    local deadline = next_arg()
    local spill = nil
    if next_arg() == '1' then spill = next_key() end
    local first, last = a + 1, a + n
    a = last
    local size = redis.call('SCARD', name)
    local created = size == 0
    -- Only a set of `cap` entries or more can carry the mark.
    local was_marked = size >= cap and redis.call('SISMEMBER', name, '') == 1
    local marked = was_marked
    if size + n <= cap then
      -- Everything fits (the usual case): plain SADD in chunks, as for PFADD.
      for from = first, last, 1000 do
        redis.call('SADD', name, unpack(ARGV, from, math.min(from + 999, last)))
      end
    else
      for i = first, last do
        if size < cap then
          size = size + redis.call('SADD', name, ARGV[i])
        elseif redis.call('SISMEMBER', name, ARGV[i]) == 0 then
          if not marked then
            redis.call('SADD', name, '')
            marked = true
          end
          break
        end
      end
    end
    -- The set did not exist, so this write created it: give it its deadline.
    if created and n > 0 and deadline ~= '' then
      redis.call('PEXPIREAT', name, deadline)
    end
    -- Past the cap, what the set cannot hold goes to its spill sketch: its members once
    -- (at the overflow), and every element written from then on.
    if spill and marked then
      if not was_marked then
        local members = redis.call('SMEMBERS', name)
        for i = #members, 1, -1 do
          if members[i] == '' then table.remove(members, i) end
        end
        for from = 1, #members, 1000 do
          redis.call('PFADD', spill, unpack(members, from, math.min(from + 999, #members)))
        end
      end
      for from = first, last, 1000 do
        redis.call('PFADD', spill, unpack(ARGV, from, math.min(from + 999, last)))
      end
      -- The spill sketch lives as long as its set (whose deadline its first write set).
      local at = redis.call('PEXPIRETIME', name)
      if at > 0 then redis.call('PEXPIREAT', spill, at, 'NX') end
    end
  end

  -- Visit groups: a touch starts a visit when neither its marker nor its previous marker
  -- exists; touching the marker right away makes a later touch in this batch see it. A
  -- marker holds its deadline (Unix ms), and the deadline only moves forward: a batch
  -- applied after a later one (two in flight) must not shorten the visit.
  for _ = 1, tonumber(next_arg()) do
    local n_counters, n_touches = tonumber(next_arg()), tonumber(next_arg())
    local counters = {}
    for i = 1, n_counters do
      counters[i] = { next_key(), next_arg() }
    end
    local started = 0
    for _ = 1, n_touches do
      local marker = next_key()
      local previous = nil
      if next_arg() == '1' then previous = next_key() end
      local deadline = next_arg()
      -- One command refreshes the marker and says whether it was there (GET: false when
      -- the key was absent).
      local was = redis.call('SET', marker, deadline, 'PXAT', deadline, 'GET')
      if was then
        local was_deadline = tonumber(was)
        if was_deadline and was_deadline > tonumber(deadline) then
          redis.call('SET', marker, was, 'PXAT', was)
        end
      elseif previous == nil or redis.call('EXISTS', previous) == 0 then
        started = started + 1
      end
    end
    if started > 0 then
      for _, counter in ipairs(counters) do
        add_to_counter(counter[1], started, counter[2])
      end
    end
    started_total = started_total + started
  end
end
return started_total
