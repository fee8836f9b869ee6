//! The library's HyperLogLog against a real redis-server: same counts, same
//! registers, bytes that travel both ways.
//!
//! Every expected value here comes from Redis (`PFCOUNT`, `GET`, `PFDEBUG GETREG`,
//! `PFMERGE`, `PFADD` replies); the library only ever produces the actual values.

use footfall::sketch::{Encoding, HEADER_LEN, Hll, REGISTERS, read_header};
use footfall_server::cli;
use footfall_tests::redis_server::RedisServer;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use redis::Connection;

/// Elements per `PFADD` command, and commands per pipeline: big enough that a
/// million elements take a few round trips, small enough that no single reply
/// waits long.
const ELEMENTS_PER_PFADD: usize = 10_000;
const PFADDS_PER_PIPELINE: usize = 10;

/// A server configured like a production Redis for HyperLogLogs: the test must
/// not depend on the packaged default of `hll-sparse-max-bytes`.
fn server() -> RedisServer {
    RedisServer::builder()
        .args(["--hll-sparse-max-bytes", "3000"])
        .start()
}

/// `n` distinct pseudo-random ids: an 8-byte counter (which makes them distinct)
/// followed by 0 to 24 random bytes, so every MurmurHash64A tail length and up to
/// four 8-byte blocks occur, and the bytes are not limited to text.
fn ids(seed: u64, start: u64, n: usize) -> Vec<Vec<u8>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ start.rotate_left(32));
    (start..start + n as u64)
        .map(|counter| {
            let mut id = counter
                .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                .to_le_bytes()
                .to_vec();
            let tail_len = rng.random_range(0..=24);
            id.extend((0..tail_len).map(|_| rng.random::<u8>()));
            id
        })
        .collect()
}

/// A library sketch of these elements.
fn sketch(elements: &[Vec<u8>]) -> Hll {
    let mut hll = Hll::new();
    for element in elements {
        hll.add(element);
    }
    hll
}

/// `PFADD key elements…`, pipelined in big chunks.
fn pfadd(connection: &mut Connection, key: &str, elements: &[Vec<u8>]) {
    for batch in elements.chunks(ELEMENTS_PER_PFADD * PFADDS_PER_PIPELINE) {
        let mut pipeline = redis::pipe();
        for chunk in batch.chunks(ELEMENTS_PER_PFADD) {
            pipeline.cmd("PFADD").arg(key).arg(chunk).ignore();
        }
        pipeline.exec(connection).expect("PFADD");
    }
}

fn pfcount(connection: &mut Connection, keys: &[&str]) -> u64 {
    redis::cmd("PFCOUNT")
        .arg(keys)
        .query(connection)
        .expect("PFCOUNT")
}

fn get(connection: &mut Connection, key: &str) -> Vec<u8> {
    redis::cmd("GET").arg(key).query(connection).expect("GET")
}

fn set(connection: &mut Connection, key: &str, bytes: &[u8]) {
    redis::cmd("SET")
        .arg(key)
        .arg(bytes)
        .exec(connection)
        .expect("SET");
}

/// The registers Redis reports for `key`, read from a copy because `PFDEBUG`
/// converts the key it reads to dense.
fn redis_registers(connection: &mut Connection, key: &str) -> Vec<u8> {
    let copy = format!("{key}:pfdebug-copy");
    redis::cmd("COPY")
        .arg(key)
        .arg(&copy)
        .arg("REPLACE")
        .exec(connection)
        .expect("COPY");
    let registers: Vec<i64> = redis::cmd("PFDEBUG")
        .arg("GETREG")
        .arg(&copy)
        .query(connection)
        .expect("PFDEBUG GETREG");
    redis::cmd("DEL").arg(&copy).exec(connection).expect("DEL");
    assert_eq!(registers.len(), REGISTERS);
    registers
        .into_iter()
        .map(|register| u8::try_from(register).expect("a six-bit register"))
        .collect()
}

fn registers(hll: &Hll) -> Vec<u8> {
    (0..REGISTERS).map(|index| hll.register(index)).collect()
}

fn encoding_of(bytes: &[u8]) -> Encoding {
    read_header(bytes).expect("a HyperLogLog header").encoding
}

/// The bytes after the header: the cached cardinality differs by design (Redis
/// caches a valid count, exports mark theirs stale).
fn body(bytes: &[u8]) -> &[u8] {
    bytes.get(HEADER_LEN..).unwrap_or_default()
}

#[test]
fn count_registers_and_bytes_match_redis_from_1_to_a_million() {
    let server = server();
    let mut connection = server.connection();
    let checkpoints = [
        1usize, 2, 3, 10, 100, 300, 1000, 1300, 1600, 2000, 3000, 5000, 10_000, 30_000, 100_000,
        300_000, 1_000_000,
    ];
    let mut hll = Hll::new();
    let mut added = 0;
    let mut sparse_points = 0;
    let mut dense_points = 0;
    for n in checkpoints {
        let new = ids(1, added as u64, n - added);
        for element in &new {
            hll.add(element);
        }
        pfadd(&mut connection, "scale", &new);
        added = n;

        let expected = pfcount(&mut connection, &["scale"]);
        assert_eq!(hll.count(), expected, "count of {n} ids");

        let bytes = get(&mut connection, "scale");
        let decoded = Hll::from_redis_bytes(&bytes).expect("Redis's bytes decode");
        assert_eq!(registers(&decoded), registers(&hll), "registers of {n} ids");
        assert_eq!(
            registers(&decoded),
            redis_registers(&mut connection, "scale"),
            "PFDEBUG of {n} ids"
        );

        // Away from the 3000-byte boundary, where the order of the adds could
        // matter (see `encoding_boundary_follows_redis`), the encoding is Redis's,
        // and the shortest sparse code is the one Redis keeps.
        assert_eq!(encoding_of(&bytes), hll.encoding(), "encoding of {n} ids");
        assert_eq!(
            body(&bytes),
            body(&hll.to_redis_bytes()),
            "bytes of {n} ids"
        );
        match hll.encoding() {
            Encoding::Sparse => sparse_points += 1,
            Encoding::Dense => dense_points += 1,
        }
    }
    assert!(
        sparse_points >= 5 && dense_points >= 5,
        "{sparse_points} sparse, {dense_points} dense"
    );
}

#[test]
fn pfadd_replies_match_add_through_the_switch_to_dense() {
    let server = server();
    let mut connection = server.connection();
    // 2500 ids with every fifth one repeated, one PFADD each, so the key turns dense
    // part way through and some adds change nothing.
    let unique = ids(2, 0, 2500);
    let elements: Vec<&Vec<u8>> = unique
        .iter()
        .enumerate()
        .flat_map(|(i, id)| {
            let again = (i % 5 == 0).then_some(id);
            std::iter::once(id).chain(again)
        })
        .collect();
    let mut pipeline = redis::pipe();
    for element in &elements {
        pipeline.cmd("PFADD").arg("replies").arg(element.as_slice());
    }
    let replies: Vec<i64> = pipeline.query(&mut connection).expect("PFADD replies");

    let mut hll = Hll::new();
    let changed: Vec<i64> = elements
        .iter()
        .map(|element| i64::from(hll.add(element)))
        .collect();
    assert_eq!(changed, replies);
    assert_eq!(
        encoding_of(&get(&mut connection, "replies")),
        Encoding::Dense
    );
    assert_eq!(hll.count(), pfcount(&mut connection, &["replies"]));
}

#[test]
fn encoding_boundary_follows_redis() {
    // Add ids one PFADD at a time across the 3000-byte limit and compare Redis's
    // encoding after each with the library's rule for the same registers.
    let server = server();
    let mut connection = server.connection();
    let elements = ids(3, 0, 1800);
    let mut pipeline = redis::pipe();
    for element in &elements {
        pipeline
            .cmd("PFADD")
            .arg("boundary")
            .arg(element.as_slice())
            .ignore();
        pipeline.cmd("STRLEN").arg("boundary");
    }
    let lengths: Vec<usize> = pipeline.query(&mut connection).expect("PFADD and STRLEN");

    let mut hll = Hll::new();
    let mut mismatches = Vec::new();
    for (i, (element, &redis_len)) in elements.iter().zip(&lengths).enumerate() {
        hll.add(element);
        let ours = hll.to_redis_bytes().len();
        let redis_dense = redis_len == footfall::sketch::DENSE_LEN;
        if redis_dense != (hll.encoding() == Encoding::Dense) || (!redis_dense && ours != redis_len)
        {
            mismatches.push((i + 1, redis_len, ours));
        }
    }
    assert!(
        mismatches.is_empty(),
        "(elements, Redis length, library length): {mismatches:?}"
    );
}

#[test]
fn redis_accepts_library_bytes_and_keeps_adding_to_them() {
    let server = server();
    let mut connection = server.connection();
    for (n, more) in [
        (1, 5),
        (200, 100),
        (1200, 2000),
        (5000, 20_000),
        (200_000, 50_000),
    ] {
        let key = format!("library:{n}");
        let first = ids(4, 0, n);
        let mut hll = sketch(&first);
        let bytes = hll.to_redis_bytes();
        set(&mut connection, &key, &bytes);
        assert_eq!(
            pfcount(&mut connection, &[&key]),
            hll.count(),
            "PFCOUNT of library bytes, {n} ids"
        );

        let second = ids(4, n as u64, more);
        pfadd(&mut connection, &key, &second);
        for element in &second {
            hll.add(element);
        }
        let after =
            Hll::from_redis_bytes(&get(&mut connection, &key)).expect("Redis's bytes decode");
        assert_eq!(
            registers(&after),
            registers(&hll),
            "{n} ids then {more} more"
        );
        assert_eq!(
            pfcount(&mut connection, &[&key]),
            hll.count(),
            "{n} ids then {more} more"
        );
    }
}

#[test]
fn pfmerge_of_library_and_redis_keys_equals_merge() {
    let server = server();
    let mut connection = server.connection();
    // Sparse with sparse, sparse with dense, dense with dense; overlapping ids.
    for (n_library, n_redis) in [(300, 500), (800, 40_000), (60_000, 20_000)] {
        let library_ids = ids(5, 0, n_library);
        let redis_ids = ids(5, (n_library / 2) as u64, n_redis);
        let library = sketch(&library_ids);
        set(&mut connection, "merge:library", &library.to_redis_bytes());
        redis::cmd("DEL")
            .arg("merge:redis")
            .exec(&mut connection)
            .expect("DEL");
        pfadd(&mut connection, "merge:redis", &redis_ids);
        redis::cmd("DEL")
            .arg("merge:dest")
            .exec(&mut connection)
            .expect("DEL");
        redis::cmd("PFMERGE")
            .arg("merge:dest")
            .arg("merge:library")
            .arg("merge:redis")
            .exec(&mut connection)
            .expect("PFMERGE");

        let from_redis =
            Hll::from_redis_bytes(&get(&mut connection, "merge:redis")).expect("decode");
        let mut merged = library.clone();
        merged.merge(&from_redis);
        let dest = Hll::from_redis_bytes(&get(&mut connection, "merge:dest")).expect("decode");
        assert_eq!(
            registers(&dest),
            registers(&merged),
            "{n_library} ∪ {n_redis}"
        );
        assert_eq!(pfcount(&mut connection, &["merge:dest"]), merged.count());

        // The union of the sketches equals the sketch of the union of the ids.
        let mut all = library_ids;
        all.extend(redis_ids);
        assert_eq!(registers(&merged), registers(&sketch(&all)));
    }
}

#[test]
fn multi_key_pfcount_equals_count_union() {
    let server = server();
    let mut connection = server.connection();
    let sizes = [10usize, 900, 3000, 50_000, 250_000];
    let mut sketches = Vec::new();
    let mut keys = Vec::new();
    for (i, &n) in sizes.iter().enumerate() {
        // Overlapping ranges so the union is smaller than the sum.
        let elements = ids(6, (i * 5000) as u64, n);
        let key = format!("union:{i}");
        pfadd(&mut connection, &key, &elements);
        sketches.push(sketch(&elements));
        keys.push(key);
    }
    for subset in [
        &[0usize, 1][..],
        &[1, 2],
        &[0, 2, 3],
        &[2, 3, 4],
        &[0, 1, 2, 3, 4],
    ] {
        let subset_keys: Vec<&str> = subset.iter().map(|&i| keys[i].as_str()).collect();
        let subset_sketches: Vec<&Hll> = subset.iter().map(|&i| &sketches[i]).collect();
        assert_eq!(
            Hll::count_union(&subset_sketches),
            pfcount(&mut connection, &subset_keys),
            "union of {subset_keys:?}"
        );
    }
}

#[test]
fn a_forged_cached_cardinality_fools_redis_but_not_the_library() {
    let server = server();
    let mut connection = server.connection();
    for n in [500usize, 50_000] {
        let hll = sketch(&ids(7, 0, n));
        let truth = hll.count();

        // Exports mark the cache stale, so Redis computes the count itself.
        set(&mut connection, "forged", &hll.to_redis_bytes());
        assert_eq!(pfcount(&mut connection, &["forged"]), truth);

        // The same registers with a valid-looking cache of 42: Redis answers 42.
        let mut forged = hll.to_redis_bytes();
        forged[8..16].copy_from_slice(&42u64.to_le_bytes());
        set(&mut connection, "forged", &forged);
        assert_eq!(
            pfcount(&mut connection, &["forged"]),
            42,
            "Redis trusts the cache"
        );

        // The library ignores the cache, including in bytes Redis hands back.
        assert_eq!(
            Hll::from_redis_bytes(&forged).expect("decode").count(),
            truth
        );
        let round_trip = get(&mut connection, "forged");
        assert_eq!(
            Hll::from_redis_bytes(&round_trip).expect("decode").count(),
            truth
        );
    }
}

#[test]
fn corrupt_sketches_are_refused_by_redis_and_the_library_alike() {
    let server = server();
    let mut connection = server.connection();
    let sparse = sketch(&ids(8, 0, 100)).to_redis_bytes();
    let dense = sketch(&ids(8, 0, 10_000)).to_redis_bytes();
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("dense one byte short", dense[..dense.len() - 1].to_vec()),
        ("dense one byte long", [&dense[..], b"\0"].concat()),
        (
            "sparse with a trailing opcode",
            [&sparse[..], b"\0"].concat(),
        ),
        (
            "sparse with two full XZEROs",
            [&sparse[..HEADER_LEN], &[0x7f, 0xff, 0x7f, 0xff]].concat(),
        ),
        (
            "sparse covering too few registers",
            [&sparse[..HEADER_LEN], &[0x7f, 0xfe]].concat(),
        ),
        (
            "bad encoding byte",
            [&b"HYLL\x02"[..], &sparse[5..]].concat(),
        ),
        ("bad magic", [&b"HYLX"[..], &sparse[4..]].concat()),
    ];
    let mut header_only = sparse[..HEADER_LEN].to_vec();
    header_only[15] = 0x80;
    cases.push(("header only", header_only));

    for (name, bytes) in cases {
        assert!(
            Hll::from_redis_bytes(&bytes).is_err(),
            "the library accepted: {name}"
        );
        set(&mut connection, "corrupt", &bytes);
        let reply: redis::RedisResult<u64> =
            redis::cmd("PFCOUNT").arg("corrupt").query(&mut connection);
        assert!(reply.is_err(), "Redis accepted {name}: {reply:?}");
    }
}

#[test]
fn the_cli_counts_what_redis_cli_get_writes() {
    let server = server();
    let mut connection = server.connection();
    let directory = tempfile::tempdir().expect("a temporary directory");
    for n in [700usize, 40_000] {
        let key = format!("cli:{n}");
        pfadd(&mut connection, &key, &ids(9, 0, n));
        let expected = pfcount(&mut connection, &[&key]);

        // `redis-cli --raw GET key > FILE` writes the value and one newline.
        let mut file_bytes = get(&mut connection, &key);
        file_bytes.push(b'\n');
        let file = directory.path().join(format!("{n}.hll"));
        std::fs::write(&file, &file_bytes).expect("write the sketch file");

        assert_eq!(cli::sketch::count(&[&file_bytes]), Ok(expected));
        let report = cli::sketch::inspect(&file_bytes).expect("inspect");
        assert!(
            report.contains(&format!("estimate: {expected}\n")),
            "{report}"
        );

        let mut output = Vec::new();
        let command = cli::sketch::SketchCommand::Count { files: vec![file] };
        cli::sketch::run(&command, &b""[..], &mut output).expect("footfall sketch count");
        assert_eq!(output, format!("{expected}\n").into_bytes());
    }
}
