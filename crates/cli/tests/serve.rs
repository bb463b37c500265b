//! The binary end to end: `user add`, `token create`, `serve` on a real port, `backup`,
//! `migrate`, and configuration from flags, environment and `kefu.toml`.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn kefu(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kefu"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("KEFU_DATABASE_URL")
        .env_remove("KEFU_DATA_DIR")
        .env("KEFU_LOG", "warn")
        .output()
        .expect("run kefu")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A minimal HTTP/1.1 client: enough to talk to kefu on loopback without a client crate.
fn http(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    if let Some(token) = token {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    let body = body.unwrap_or("");
    if !body.is_empty() {
        request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn start(data_dir: &Path, port: u16) -> Server {
    let child = Command::new(env!("CARGO_BIN_EXE_kefu"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env_remove("KEFU_DATABASE_URL")
        .env("KEFU_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start kefu serve");
    let server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "kefu serve did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

#[test]
fn serve_answers_with_users_and_tokens_made_on_the_command_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let added = kefu(
        dir.path(),
        &[
            "user",
            "add",
            "--email",
            "Lead@Example.com",
            "--password",
            "correct horse",
            "--role",
            "supervisor",
        ],
    );
    assert!(added.status.success(), "{}", text(&added.stderr));
    assert!(
        text(&added.stdout).contains("lead@example.com"),
        "{}",
        text(&added.stdout)
    );
    let token = kefu(
        dir.path(),
        &[
            "token",
            "create",
            "--email",
            "lead@example.com",
            "--scope",
            "customers:read",
            "--scope",
            "customers:write",
        ],
    );
    assert!(token.status.success(), "{}", text(&token.stderr));
    let token = text(&token.stdout).trim().to_string();
    assert!(token.starts_with("kefu_"), "{token}");

    let port = free_port();
    let _server = start(dir.path(), port);
    let (status, body) = http(port, "GET", "/api/v1/health", None, None);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"database\":\"sqlite\""), "{body}");
    let (status, body) = http(
        port,
        "POST",
        "/api/v1/customers",
        Some(&token),
        Some(r#"{"name":"王芳"}"#),
    );
    assert_eq!(status, 201, "{body}");
    // The token's scopes are narrower than the supervisor role: cases are out of reach.
    let (status, body) = http(port, "GET", "/api/v1/cases", Some(&token), None);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("\"code\":\"forbidden\""), "{body}");
    let (status, _) = http(
        port,
        "GET",
        "/api/v1/customers",
        Some("kefu_not-a-token"),
        None,
    );
    assert_eq!(status, 401);
}

#[test]
fn bad_command_line_input_is_refused_clearly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bad_role = kefu(
        dir.path(),
        &[
            "user",
            "add",
            "--email",
            "a@example.com",
            "--password",
            "long enough",
            "--role",
            "boss",
        ],
    );
    assert!(!bad_role.status.success());
    assert!(
        text(&bad_role.stderr)
            .contains("role: `boss` is not one of admin, supervisor, agent, readonly"),
        "{}",
        text(&bad_role.stderr)
    );
    let short = kefu(
        dir.path(),
        &[
            "user",
            "add",
            "--email",
            "a@example.com",
            "--password",
            "short",
            "--role",
            "agent",
        ],
    );
    assert!(!short.status.success());
    assert!(
        text(&short.stderr).contains("password"),
        "{}",
        text(&short.stderr)
    );
    let unknown = kefu(
        dir.path(),
        &["token", "create", "--email", "nobody@example.com"],
    );
    assert!(!unknown.status.success());
    assert!(
        text(&unknown.stderr).contains("no user has email nobody@example.com"),
        "{}",
        text(&unknown.stderr)
    );
    let bad_url = kefu(
        dir.path(),
        &["--database-url", "mysql://localhost/kefu", "migrate"],
    );
    assert!(!bad_url.status.success());
    assert!(
        text(&bad_url.stderr).contains("unsupported database URL"),
        "{}",
        text(&bad_url.stderr)
    );
}

#[test]
fn backup_is_a_consistent_copy_that_opens() {
    let dir = tempfile::tempdir().expect("temp dir");
    let added = kefu(
        dir.path(),
        &[
            "user",
            "add",
            "--email",
            "admin@example.com",
            "--password",
            "correct horse",
            "--role",
            "admin",
        ],
    );
    assert!(added.status.success(), "{}", text(&added.stderr));
    let target = dir.path().join("copy.sqlite");
    let backup = kefu(dir.path(), &["backup", target.to_str().expect("utf-8")]);
    assert!(backup.status.success(), "{}", text(&backup.stderr));
    assert!(target.exists());
    let again = kefu(dir.path(), &["backup", target.to_str().expect("utf-8")]);
    assert!(
        !again.status.success(),
        "an existing file is never overwritten"
    );

    // The copy is a kefu database of its own: the user is there.
    let restored = tempfile::tempdir().expect("temp dir");
    std::fs::copy(&target, restored.path().join("kefu.sqlite")).expect("copy");
    let token = kefu(
        restored.path(),
        &["token", "create", "--email", "admin@example.com"],
    );
    assert!(token.status.success(), "{}", text(&token.stderr));
}

#[test]
fn migrate_reports_and_settings_come_from_flags_env_and_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let first = kefu(dir.path(), &["migrate"]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(
        text(&first.stdout).contains("applied 0001_core"),
        "{}",
        text(&first.stdout)
    );
    let second = kefu(dir.path(), &["migrate"]);
    assert!(
        text(&second.stdout).contains("up to date"),
        "{}",
        text(&second.stdout)
    );

    // kefu.toml names the data directory; the environment overrides it.
    let work = tempfile::tempdir().expect("temp dir");
    let from_file = work.path().join("from-file");
    let from_env = work.path().join("from-env");
    std::fs::write(
        work.path().join("kefu.toml"),
        format!("data_dir = {:?}\n", from_file.to_str().expect("utf-8")),
    )
    .expect("write toml");
    let run = |envs: &[(&str, &Path)]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_kefu"));
        command
            .current_dir(work.path())
            .arg("migrate")
            .env_remove("KEFU_DATABASE_URL")
            .env_remove("KEFU_DATA_DIR");
        for (key, value) in envs {
            command.env(key, value);
        }
        command.output().expect("run kefu")
    };
    assert!(run(&[]).status.success());
    assert!(
        from_file.join("kefu.sqlite").exists(),
        "kefu.toml's data_dir is used"
    );
    assert!(run(&[("KEFU_DATA_DIR", &from_env)]).status.success());
    assert!(
        from_env.join("kefu.sqlite").exists(),
        "KEFU_DATA_DIR wins over kefu.toml"
    );

    std::fs::write(
        work.path().join("kefu.toml"),
        "data_dir = 'x'\ncolour = 'blue'\n",
    )
    .expect("write toml");
    let bad = run(&[]);
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("unknown field `colour`"),
        "{}",
        text(&bad.stderr)
    );

    // Reply drafting: off unless an endpoint is set; a half or wrong setting is refused
    // before anything starts (a password in the URL is not echoed); a whole one is
    // accepted, and the key does not appear in what the command prints.
    for (toml, says) in [
        (
            "draft_endpoint = 'http://127.0.0.1:8080/v1'\n",
            "draft_model",
        ),
        (
            "draft_endpoint = 'https://api.example.com/v1'\ndraft_model = 'm'\n",
            "http:// URL",
        ),
        (
            "draft_endpoint = 'http://u:hunter2@127.0.0.1/v1'\ndraft_model = 'm'\n",
            "credentials",
        ),
    ] {
        std::fs::write(
            work.path().join("kefu.toml"),
            format!(
                "data_dir = {:?}\n{toml}",
                from_file.to_str().expect("utf-8")
            ),
        )
        .expect("write toml");
        let bad = run(&[]);
        assert!(!bad.status.success(), "{toml}");
        assert!(text(&bad.stderr).contains(says), "{}", text(&bad.stderr));
        assert!(
            !text(&bad.stderr).contains("hunter2"),
            "{}",
            text(&bad.stderr)
        );
    }
    std::fs::write(
        work.path().join("kefu.toml"),
        format!(
            "data_dir = {:?}\ndraft_model = 'qwen'\n",
            from_file.to_str().expect("utf-8")
        ),
    )
    .expect("write toml");
    let good = run(&[
        ("KEFU_DRAFT_ENDPOINT", Path::new("http://127.0.0.1:8080/v1")),
        ("KEFU_DRAFT_API_KEY", Path::new("sk-never-printed")),
    ]);
    assert!(good.status.success(), "{}", text(&good.stderr));
    let all = format!("{}{}", text(&good.stdout), text(&good.stderr));
    assert!(!all.contains("sk-never-printed"), "{all}");
}
