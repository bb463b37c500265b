//! `kefu bot eval` and `kefu bot bench` through the real binary: the three tasks, the JSON
//! report's fields, lines that are not examples, and input it cannot use at all.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn kefu(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kefu"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("KEFU_DATABASE_URL")
        .env_remove("KEFU_DATA_DIR")
        .env_remove("KEFU_CONFIG")
        .env("KEFU_LOG", "warn")
        .output()
        .expect("run kefu")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write(dir: &Path, name: &str, lines: &[&str]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, lines.join("\n")).expect("write");
    path.display().to_string()
}

fn json(output: &Output) -> Value {
    assert!(output.status.success(), "{}", text(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("one JSON object")
}

fn repo_file(path: &str) -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.join(path).display().to_string()
}

#[test]
fn intent_eval_trains_on_the_given_examples() {
    let dir = tempfile::tempdir().expect("tempdir");
    let train = write(
        dir.path(),
        "train.jsonl",
        &[
            r#"{"text":"where is my card","intent":"card_arrival"}"#,
            r#"{"text":"my card has not arrived yet","intent":"card_arrival"}"#,
            r#"{"text":"card still not here","intent":"card_arrival"}"#,
            r#"{"text":"how do I top up","intent":"top_up"}"#,
            r#"{"text":"add money to my account","intent":"top_up"}"#,
            r#"{"text":"top-up by bank transfer","intent":"top_up"}"#,
        ],
    );
    let test = write(
        dir.path(),
        "test.jsonl",
        &[
            r#"{"text":"has my card arrived?","intent":"card_arrival"}"#,
            r#"{"text":"I want to top up my account","intent":"top_up"}"#,
            "not json at all",
            r#"{"text":"missing the intent"}"#,
        ],
    );
    let report = json(&kefu(
        dir.path(),
        &[
            "bot", "eval", "--task", "intent", &test, "--train", &train, "--json",
        ],
    ));
    assert_eq!(report["task"], "intent");
    assert_eq!(report["examples"], 2);
    assert_eq!(report["accuracy"], 1.0, "{report}");
    assert_eq!(report["macro_f1"], 1.0);
    assert!(report["p50_ms"].as_f64().is_some() && report["p99_ms"].as_f64().is_some());
    assert!(report.get("hit_at_1").is_none());
    let skipped = report["skipped"].as_array().expect("skipped lines");
    assert_eq!(skipped.len(), 2, "{report}");
    assert!(
        skipped[0]
            .as_str()
            .unwrap_or_default()
            .contains("test.jsonl:3")
    );

    // Text output says the same.
    let output = kefu(
        dir.path(),
        &["bot", "eval", "--task", "intent", &test, "--train", &train],
    );
    assert!(output.status.success());
    let out = text(&output.stdout);
    assert!(
        out.contains("accuracy  1.0000") && out.contains("skipped   2 lines"),
        "{out}"
    );
}

#[test]
fn sentiment_eval_uses_the_shipped_model() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = repo_file("crates/bot/data/eval/cs_sentiment_zh.jsonl");
    let report = json(&kefu(
        dir.path(),
        &["bot", "eval", "--task", "sentiment", &file, "--json"],
    ));
    assert_eq!(report["examples"], 60);
    assert!(
        report["accuracy"].as_f64().unwrap_or_default() >= 0.85,
        "{report}"
    );
}

#[test]
fn faq_eval_reports_hits_and_reciprocal_rank() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kb = write(
        dir.path(),
        "kb.jsonl",
        &[
            r#"{"id":"refund","question":"退款多久到账","answer":"1-3个工作日"}"#,
            r#"{"id":"refund","question":"How long does a refund take?"}"#,
            r#"{"id":"invoice","question":"怎么开发票"}"#,
            r#"{"id":"password","question":"忘记密码怎么办"}"#,
        ],
    );
    let queries = write(
        dir.path(),
        "q.jsonl",
        &[
            r#"{"text":"退款什麼時候到賬","gold":["refund"]}"#,
            r#"{"text":"when will my refund arrive","gold":["refund"]}"#,
            r#"{"text":"我要开发票","gold":["invoice"]}"#,
            r#"{"text":"密码忘了","gold":["password"]}"#,
        ],
    );
    let report = json(&kefu(
        dir.path(),
        &[
            "bot", "eval", "--task", "faq", &queries, "--kb", &kb, "--json",
        ],
    ));
    assert_eq!(report["examples"], 4);
    assert_eq!(report["hit_at_1"], 1.0, "{report}");
    assert_eq!(report["hit_at_5"], 1.0);
    assert_eq!(report["mrr"], 1.0);
    assert!(report.get("accuracy").is_none());
}

#[test]
fn unusable_input_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let garbage = write(dir.path(), "garbage.jsonl", &["\u{0}\u{1}", "{", "[1,2]"]);
    let output = kefu(
        dir.path(),
        &["bot", "eval", "--task", "sentiment", &garbage],
    );
    assert!(!output.status.success());
    let err = text(&output.stderr);
    assert!(
        err.contains("has no usable lines") && err.contains("garbage.jsonl:1"),
        "{err}"
    );

    let output = kefu(dir.path(), &["bot", "eval", "--task", "faq", &garbage]);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("--kb"),
        "{}",
        text(&output.stderr)
    );

    let output = kefu(
        dir.path(),
        &["bot", "eval", "--task", "intent", "/no/such/file"],
    );
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("cannot read /no/such/file"));
}

#[test]
fn bench_reports_latency_throughput_and_memory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let report = json(&kefu(
        dir.path(),
        &[
            "bot",
            "bench",
            "--entries",
            "300",
            "--messages",
            "200",
            "--json",
        ],
    ));
    assert_eq!(report["entries"], 300);
    assert_eq!(report["messages"], 200);
    for key in [
        "p50_ms",
        "p99_ms",
        "answers_per_s",
        "bot_memory_mb",
        "build_s",
    ] {
        assert!(report[key].as_f64().is_some(), "{key}: {report}");
    }
    let outcomes = report["outcomes"].as_object().expect("outcomes");
    let total: u64 = outcomes.values().filter_map(Value::as_u64).sum();
    assert_eq!(total, 200);
    // A fifth of the messages ask what the knowledge base does not cover.
    assert!(
        outcomes.get("Handoff").and_then(Value::as_u64).unwrap_or(0) >= 40,
        "{report}"
    );
}

#[test]
fn kb_import_keeps_good_rows_and_names_bad_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = write(
        dir.path(),
        "kb.csv",
        &[
            "question,answer,similar,category,status",
            "退款多久到账,1-3 个工作日原路退回,退款什么时候到|How long does a refund take?,售后,",
            "怎么开发票,订单页点击申请开票,,发票,draft",
            ",没有问题的答案,,,",
            "坏状态,答案,,,maybe",
        ],
    );
    let output = kefu(dir.path(), &["kb", "import", &csv, "--publish"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("imported 2 entries, 2 rows refused"));
    let err = text(&output.stderr);
    assert!(
        err.contains("kb.csv:4: question") && err.contains("kb.csv:5: status"),
        "{err}"
    );

    let jsonl = write(
        dir.path(),
        "kb.jsonl",
        &[
            r#"{"question":"Where is my parcel?","answer":"Track it in the app.","similar":["track my order"],"status":"published"}"#,
            r#"{"question":"no answer"}"#,
            "not json",
        ],
    );
    let output = kefu(dir.path(), &["kb", "import", &jsonl]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("imported 1 entries, 2 rows refused"));

    let nothing = write(dir.path(), "bad.jsonl", &["{}", "[]"]);
    let output = kefu(dir.path(), &["kb", "import", &nothing]);
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("no entry was imported"));
}

#[test]
fn bot_train_adds_intents_and_examples_and_cross_validates() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The database as it is: the built-in intents only.
    let output = kefu(dir.path(), &["bot", "train", "--folds", "3", "--json"]);
    let before = json(&output);
    assert_eq!(before["intents"], 11);
    assert_eq!(before["admin_examples"], 0);
    let cv = &before["cross_validation"];
    assert_eq!(cv["folds"], 3);
    let accuracy = cv["accuracy"].as_f64().unwrap_or_default();
    assert!(accuracy > 0.5 && accuracy < 1.0, "{cv}");
    assert_eq!(cv["per_intent"].as_array().map(Vec::len), Some(11));

    let file = write(
        dir.path(),
        "intents.jsonl",
        &[
            r#"{"intent":"membership","text":"会员有什么权益"}"#,
            r#"{"intent":"membership","label_zh":"会员权益","label_en":"Membership benefits"}"#,
            r#"{"intent":"membership","text":"积分怎么兑换"}"#,
            r#"{"intent":"membership","text":"how do I earn loyalty points"}"#,
            r#"{"intent":"invoice","text":"专票和普票有什么区别"}"#,
            r#"{"intent":"no_such","text":"这条没有意图"}"#,
            r#"{"intent":"Bad Name","label_zh":"坏","label_en":"bad"}"#,
            "not json",
        ],
    );
    let output = kefu(
        dir.path(),
        &["bot", "train", "--examples", &file, "--folds", "3"],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let out = text(&output.stdout);
    assert!(
        out.contains("added 5 intents and examples, 3 refused"),
        "{out}"
    );
    assert!(out.contains("trained 12 intents"), "{out}");
    assert!(out.contains("3-fold cross-validation: accuracy"), "{out}");
    let err = text(&output.stderr);
    assert!(
        err.contains("intent no_such") && err.contains("intent Bad Name") && err.contains(":8:"),
        "{err}"
    );

    // Again: nothing new, nothing lost.
    let output = kefu(
        dir.path(),
        &[
            "bot",
            "train",
            "--examples",
            &file,
            "--json",
            "--folds",
            "2",
        ],
    );
    let again = json(&output);
    assert_eq!(again["added"], 0);
    assert_eq!(again["admin_examples"], 4);
    assert_eq!(again["intents"], 12);

    let refused = write(
        dir.path(),
        "refused.jsonl",
        &[r#"{"intent":"no_such","text":"x"}"#],
    );
    let output = kefu(dir.path(), &["bot", "train", "--examples", &refused]);
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("every line of the file was refused"));
}

#[test]
fn sentiment_eval_lists_what_it_got_wrong_when_asked() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The second line carries the wrong label on purpose: the model reads it as negative.
    let file = write(
        dir.path(),
        "s.jsonl",
        &[
            r#"{"text":"质量很好，物流也快，非常满意","label":"pos"}"#,
            r#"{"text":"用了两天就坏了，客服也不理人","label":"pos"}"#,
        ],
    );
    let report = json(&kefu(
        dir.path(),
        &[
            "bot",
            "eval",
            "--task",
            "sentiment",
            &file,
            "--json",
            "--errors",
        ],
    ));
    let errors = report["errors"].as_array().expect("errors listed");
    assert_eq!(errors.len(), 1, "{report}");
    assert_eq!(errors[0]["text"], "用了两天就坏了，客服也不理人");
    assert_eq!(errors[0]["expected"], "pos");
    assert_eq!(errors[0]["got"], "neg");
    // Without --errors the report does not carry them.
    let report = json(&kefu(
        dir.path(),
        &["bot", "eval", "--task", "sentiment", &file, "--json"],
    ));
    assert!(report.get("errors").is_none(), "{report}");
}

#[test]
fn train_sentiment_takes_labelled_examples_and_refuses_bad_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pos = write(dir.path(), "pos.txt", &["很好用，推荐", "物流很快"]);
    let neg = write(dir.path(), "neg.txt", &["太差了", "物流很快"]);
    let examples = write(
        dir.path(),
        "ex.jsonl",
        &[
            r#"{"text":"骑手很准时，饭还是热的","label":"pos","domain":"food"}"#,
            r#"{"text":"等了两个小时，汤全洒了","label":"neg"}"#,
            r#"{"text":"等了两个小时，汤全洒了","label":"neg"}"#,
        ],
    );
    let out = dir.path().join("model.bin");
    let out_arg = out.display().to_string();
    let output = kefu(
        dir.path(),
        &[
            "bot",
            "train-sentiment",
            "--pos",
            &pos,
            "--neg",
            &neg,
            "--examples",
            &examples,
            "--examples-weight",
            "2",
            "--out",
            &out_arg,
        ],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    // "物流很快" is filed under both labels and dropped; the repeated example counts once.
    let said = text(&output.stdout);
    assert!(
        said.contains("trained on 4 sentences (2 positive, 2 negative, 0 neutral)"),
        "{said}"
    );
    assert!(std::fs::metadata(&out).expect("model written").len() > 0);

    // A line with another label is named, and nothing is written.
    let bad = write(
        dir.path(),
        "bad.jsonl",
        &[
            r#"{"text":"还行","label":"pos"}"#,
            r#"{"text":"一般","label":"meh"}"#,
        ],
    );
    let bad_out = dir.path().join("bad.bin");
    let bad_out_arg = bad_out.display().to_string();
    let output = kefu(
        dir.path(),
        &[
            "bot",
            "train-sentiment",
            "--examples",
            &bad,
            "--out",
            &bad_out_arg,
        ],
    );
    assert!(!output.status.success());
    let err = text(&output.stderr);
    assert!(
        err.contains("\"meh\"") && err.contains("bad.jsonl"),
        "{err}"
    );
    assert!(!bad_out.exists());

    let output = kefu(
        dir.path(),
        &[
            "bot",
            "train-sentiment",
            "--examples",
            &examples,
            "--examples-weight",
            "0",
            "--out",
            &bad_out_arg,
        ],
    );
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("--examples-weight"));
    assert!(!bad_out.exists());

    let weighed = write(
        dir.path(),
        "weights.jsonl",
        &[r#"{"text":"还行","label":"pos","weight":-1}"#],
    );
    let output = kefu(
        dir.path(),
        &[
            "bot",
            "train-sentiment",
            "--examples",
            &weighed,
            "--out",
            &bad_out_arg,
        ],
    );
    assert!(!output.status.success());
    let err = text(&output.stderr);
    assert!(err.contains("weight -1") && err.contains("还行"), "{err}");
    assert!(!bad_out.exists());
}
