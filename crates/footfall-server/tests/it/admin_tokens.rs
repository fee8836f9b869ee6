//! Site tokens end to end with the real binary: `footfall admin-token new` makes them,
//! `footfall serve --admin-tokens-file` accepts them, and a SIGHUP rotates them without
//! a restart (a file that no longer parses keeps the tokens in use).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Child;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use crate::support::{LOOPBACK_LISTENERS, footfall, footfall_command, spawn_with_log, text};

/// A new token of `site` from the CLI: the token (shown once) and its file entry.
fn new_token(site: &str) -> (String, String) {
    let output = footfall(
        &[
            "admin-token".as_ref(),
            "new".as_ref(),
            "--site".as_ref(),
            site.as_ref(),
        ],
        b"",
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let token = text(&output.stderr)
        .lines()
        .last()
        .expect("the token's line")
        .trim()
        .to_owned();
    let entry = text(&output.stdout);
    assert!(
        !entry.contains(&token),
        "the entry holds the token: {entry}"
    );
    (token, entry)
}

/// `GET path` on the internal listener with `token`: the status code.
fn status(address: SocketAddr, path: &str, token: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).expect("the internal listener accepts");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .expect("the request is sent");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("an answer");
    let code = answer
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not HTTP: {answer}"));
    (code, answer)
}

/// Waits (at most 10 s) for a log line containing `needle`.
fn wait_for(lines: &Receiver<String>, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return line,
            Ok(_) => {}
            Err(_) => panic!("no log line with {needle:?} within 10 s"),
        }
    }
}

fn hang_up(child: &Child) {
    let status = std::process::Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

#[test]
fn tokens_of_the_file_rotate_on_sighup_without_a_restart() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let tokens = dir.path().join("tokens.toml");
    let sites = dir.path().join("sites.toml");
    std::fs::write(
        &sites,
        "[[sites]]\nid = \"caukee\"\nhostnames = [\"caukee.vn\"]\n\n[[sites]]\nid = \"tracu\"\nhostnames = [\"tracu.vn\"]\n",
    )
    .expect("write the sites file");
    let (old, old_entry) = new_token("caukee");
    std::fs::write(&tokens, &old_entry).expect("write the tokens file");

    let mut command = footfall_command();
    command
        .arg("serve")
        .args(LOOPBACK_LISTENERS)
        .args(["--store", "memory:", "--log-format", "json"])
        .arg("--sites-file")
        .arg(&sites)
        .arg("--admin-tokens-file")
        .arg(&tokens)
        .env_remove("FOOTFALL_ADMIN_TOKENS");
    let (mut child, lines) = spawn_with_log(&mut command);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let listening = wait_for(&lines, "footfall listening");
        let json: serde_json::Value = serde_json::from_str(&listening).expect("a JSON line");
        let internal: SocketAddr = json["fields"]["internal"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no internal address in {listening}"));

        // The site's token sees its site only; another site's is refused.
        let (code, answer) = status(internal, "/admin/v1/sites", &old);
        assert_eq!(code, 200, "{answer}");
        assert!(
            answer.contains("\"caukee\"") && !answer.contains("\"tracu\""),
            "{answer}"
        );
        assert_eq!(status(internal, "/admin/v1/sites/tracu", &old).0, 403);

        // Rotation: the new token added, SIGHUP, both work; the old one removed, SIGHUP.
        let (new, new_entry) = new_token("caukee");
        assert_eq!(status(internal, "/admin/v1/sites/caukee", &new).0, 401);
        std::fs::write(&tokens, format!("{old_entry}\n{new_entry}")).expect("rewrite");
        hang_up(&child);
        wait_for(&lines, "admin tokens file read again");
        assert_eq!(status(internal, "/admin/v1/sites/caukee", &old).0, 200);
        assert_eq!(status(internal, "/admin/v1/sites/caukee", &new).0, 200);
        std::fs::write(&tokens, &new_entry).expect("rewrite");
        hang_up(&child);
        wait_for(&lines, "admin tokens file read again");
        assert_eq!(status(internal, "/admin/v1/sites/caukee", &old).0, 401);
        assert_eq!(status(internal, "/admin/v1/sites/caukee", &new).0, 200);

        // A broken file is refused loudly; the tokens in use stay.
        std::fs::write(&tokens, "[[tokens]]\ndigest = \"sha256:00\"\n").expect("rewrite");
        hang_up(&child);
        let refused = wait_for(&lines, "not read again");
        assert!(refused.contains("ERROR"), "{refused}");
        assert!(refused.contains("tokens[0]"), "{refused}");
        assert_eq!(status(internal, "/admin/v1/sites/caukee", &new).0, 200);
    }));
    let _ = child.kill();
    let _ = child.wait();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
