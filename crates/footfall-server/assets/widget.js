/*! footfall widget: the "Thống kê truy cập" box, MIT OR Apache-2.0 */
// One request records the page view and returns the numbers (with data-spa, one more for
// each client-side navigation to a new address). No cookies, no storage, no eval, no HTML
// parsing of data: text goes in through textContent and styles through CSSOM
// (element.style), which a strict Content-Security-Policy allows without style-src.
// Every step is inside try/catch or a promise's catch: the host page never sees an error.
(function (doc, win) {
  'use strict';
  var script = doc.currentScript;
  var THEMES = {
    light: { bg: '#fff', fg: '#1f2328', head: '#0b5394', line: '#d0d7de', num: '#a11d1d' },
    dark: { bg: '#161b22', fg: '#e6edf3', head: '#1f4f82', line: '#30363d', num: '#ffa198' }
  };
  var INVALID = { vi: 'không hợp lệ trên tên miền này', en: 'not valid on this domain' };
  var METRICS = { visits: 1, visitors: 1, pageviews: 1 };
  // Read by screen readers, not drawn: what each figure counts (the tooltip's text, which
  // a screen reader does not reliably read).
  var UNSEEN = {
    position: 'absolute', width: '1px', height: '1px', overflow: 'hidden',
    clip: 'rect(0 0 0 0)', whiteSpace: 'nowrap'
  };

  function make(tag, style, text) {
    var node = doc.createElement(tag);
    for (var key in style) node.style[key] = style[key];
    if (text != null) node.textContent = text;
    return node;
  }

  function group(n, sep) {
    return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, sep);
  }

  // A page driven by automation (WebDriver, headless frameworks) is not a reader: its box
  // is drawn, its view is not counted, as well-known analytics scripts do.
  function automated() {
    try {
      if ((win.navigator || {}).webdriver) return true;
      var root = doc.documentElement;
      // The attributes and globals of maintained frameworks. Those that say so in their
      // User-Agent (HeadlessChrome, PhantomJS, ...) are dropped by the service's robot list.
      return ['webdriver', 'selenium', 'driver'].some(function (a) {
        return root && root.getAttribute(a);
      }) || ['Cypress', 'domAutomation', 'domAutomationController', '_selenium',
        'callSelenium', '__webdriver_evaluate', '__selenium_unwrapped',
        '__playwright__binding__', '__pwInitScripts', 'puppeteer'].some(function (m) {
        return m in win;
      });
    } catch (e) {
      return false;
    }
  }

  function draw(data, opt) {
    var footer = data.footer || {};
    var lang = opt.lang;
    var dark = opt.theme === 'dark' || (opt.theme === 'auto' && win.matchMedia &&
      win.matchMedia('(prefers-color-scheme: dark)').matches);
    var t = THEMES[dark ? 'dark' : 'light'];
    var title = (footer.title || {})[lang] || '';
    var box = make('div', {
      background: t.bg, color: t.fg, border: '1px solid ' + t.line, borderRadius: '4px',
      font: '14px/1.6 Arial,Helvetica,sans-serif', maxWidth: '300px', overflow: 'hidden',
      textAlign: 'left', boxSizing: 'border-box'
    });
    box.setAttribute('data-footfall', data.site || '');
    box.setAttribute('lang', lang);
    box.setAttribute('role', 'region');
    box.setAttribute('aria-label', title);
    box.appendChild(make('div', {
      background: t.head, color: '#fff', fontWeight: 'bold', padding: '6px 10px',
      textTransform: 'uppercase', fontSize: '13px'
    }, title));
    var list = make('ul', { listStyle: 'none', margin: '0', padding: '6px 10px' });
    box.appendChild(list);
    if (data.valid === false) {
      var bad = make('li', { fontStyle: 'italic' }, INVALID[lang]);
      bad.setAttribute('data-invalid', '');
      list.appendChild(bad);
      return box;
    }
    var sep = (opt.grouping || footer.number_format) === 'dot' ? '.' : ',';
    var labels = footer.labels || {};
    var lines = footer.lines || [];
    if (opt.lines) {
      lines = [];
      opt.lines.split(',').forEach(function (w) {
        w = w.trim();
        var configured = (footer.lines || []).filter(function (l) { return l[0] === w; })[0];
        if (labels[w]) lines.push([w, configured ? configured[1] : 'visits']);
      });
    }
    lines.forEach(function (line) {
      var w = line[0], m = opt.metrics[w] in METRICS ? opt.metrics[w] : line[1];
      if (w === 'online') m = 'visitors';
      var value = (data[w] || {})[m];
      if (typeof value !== 'number') return;
      // The numbers were read before this page view was written: add what it brings for
      // its own reader (always a page view; a visit, a visitor, an online reader when it
      // is the first of them), as the server says.
      var r = data.reader || {};
      value += (w === 'online' ? r.online : r[m]) || 0;
      var def = (data.definitions || {})[w + '.' + m] || {};
      // Stale figures (the store could not be read) are shown, but "online now" is not
      // a figure that can be old: it is drawn as unknown.
      var text = w === 'online' && data.stale ? '\u2013' : group(value, sep);
      var about = (def.description || {})[lang] || '';
      var item = make('li', { padding: '2px 0' }, '\u2022 ' + ((labels[w] || {})[lang] || w) + ': ');
      item.setAttribute('data-window', w);
      item.setAttribute('data-metric', m);
      var num = make('strong', { color: t.num }, text);
      num.title = about;
      item.appendChild(num);
      if (about) item.appendChild(make('span', UNSEEN, ' \u2013 ' + about));
      list.appendChild(item);
    });
    // The trust badge: footfall's own (a path on this service) or an official seal (the
    // issuer's https URLs); anything else is ignored.
    var trust = (footer.trust || {})[lang], abs = function (u) {
      return /^\/[^/]/.test(u) ? opt.api + u : /^https:\/\//.test(u) ? u : '';
    };
    if (trust && opt.trust && abs(trust.img) && abs(trust.href)) {
      var link = make('a', { display: 'block', padding: '0 10px 8px' });
      link.href = abs(trust.href);
      link.target = '_blank';
      link.rel = 'noopener';
      var img = make('img', { maxWidth: '100%', height: 'auto', border: '0' });
      img.src = abs(trust.img);
      img.alt = trust.alt || '';
      link.appendChild(img);
      box.appendChild(link);
    }
    return box;
  }

  try {
    if (!script || !script.src || !win.fetch) return;
    var d = script.dataset;
    var site = d.site;
    if (!site) return;
    var api = new URL(script.src).origin;
    var opt = {
      api: api,
      // data-trust="off": the page shows its own trust badge elsewhere.
      trust: d.trust !== 'off',
      lang: d.lang === 'en' ? 'en' : 'vi',
      theme: d.theme === 'dark' || d.theme === 'auto' ? d.theme : 'light',
      lines: d.lines,
      grouping: d.grouping === 'dot' || d.grouping === 'comma' ? d.grouping : '',
      metrics: {
        today: d.metricToday, week: d.metricWeek, month: d.metricMonth, total: d.metricTotal
      }
    };
    var robot = automated();
    var send = function (heartbeat) {
      var body = { site: site, path: location.pathname.slice(0, 2000) };
      if (doc.referrer) body.referrer = doc.referrer.slice(0, 2000);
      if (heartbeat) body.heartbeat = true;
      if (robot) body.record = false;
      // text/plain keeps this a CORS simple request: no preflight.
      return win.fetch(api + '/api/v1/hit' + (heartbeat ? '' : '?counts=1'), {
        method: 'POST', mode: 'cors', credentials: 'omit', keepalive: true,
        headers: { 'Content-Type': 'text/plain' }, body: JSON.stringify(body)
      });
    };
    var box, last;
    // Draws the box the first time, and again in place when `whole` (new colours) or when
    // its lines are not the same ones; else replaces only the lines whose text changed (a
    // navigation's figures). The list becomes a polite live region once it is in the page,
    // so drawing it announces nothing and a screen reader hears a figure that changed,
    // never a refresh that changed nothing.
    var show = function (data, whole) {
      var next = draw(last = data, opt);
      var was = box && box.querySelector('ul').children, now = next.querySelector('ul').children;
      if (was && !whole && was.length === now.length) {
        // From the last line back: a line moved out of `now` shifts only those after it.
        for (var i = was.length; i--;) {
          if (was[i].textContent !== now[i].textContent) was[i].parentNode.replaceChild(now[i], was[i]);
        }
        return;
      }
      var target = d.target && doc.querySelector(d.target);
      if (box) {
        if (box.parentNode) box.parentNode.replaceChild(next, box);
      } else if (target) {
        target.textContent = '';
        target.appendChild(next);
      } else if (script.parentNode) {
        script.parentNode.insertBefore(next, script.nextSibling);
      }
      box = next;
      box.querySelector('ul').setAttribute('aria-live', 'polite');
    };
    // Quick navigations can be answered out of order: a reply older than the figures
    // drawn is dropped, so the box never steps back.
    var asked = 0, drawn = 0;
    var count = function () {
      var n = ++asked;
      send(false).then(function (r) { return r.ok ? r.json() : null; }).then(function (data) {
        if (data && n > drawn) {
          drawn = n;
          show(data);
        }
      })['catch'](function () {});
    };
    count();
    // data-spa: a single-page site's client-side navigations (History API) count one page
    // view each time the path or query changes; a hash change, or a pushState or
    // replaceState to the address already shown, counts nothing.
    if (d.spa != null) {
      var shown = location.pathname + location.search;
      var moved = function () {
        try {
          var here = location.pathname + location.search;
          if (here !== shown) {
            shown = here;
            count();
          }
        } catch (e) {}
      };
      ['pushState', 'replaceState'].forEach(function (name) {
        var real = history[name];
        history[name] = function () {
          try {
            return real.apply(this, arguments);
          } finally {
            moved();
          }
        };
      });
      win.addEventListener('popstate', moved);
    }
    if (d.heartbeat != null && !robot) {
      win.setInterval(function () {
        try {
          if (doc.visibilityState === 'visible') send(true)['catch'](function () {});
        } catch (e) {}
      }, 60000);
    }
    // theme=auto follows the reader's colour scheme when it changes (dark mode at sunset):
    // the same numbers are drawn again, with no new request. Last, as a browser without
    // MediaQueryList events (before 2020) stops here.
    if (opt.theme === 'auto' && win.matchMedia) {
      win.matchMedia('(prefers-color-scheme: dark)').addEventListener('change', function () {
        try {
          if (box) show(last, true);
        } catch (e) {}
      });
    }
  } catch (e) {}
})(document, window);
