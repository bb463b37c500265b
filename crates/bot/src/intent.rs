//! Intents (意图): what a customer wants, from the built-in customer-service intents and
//! the ones an admin adds. The classifier is linear over TF-IDF word and character
//! n-grams, retrained in well under a second for a few thousand examples.

use serde::{Deserialize, Serialize};

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use crate::classifier::{Classifier, Ranked, Recipe};
use crate::embed::Encoder;
use crate::features::Spec;
use crate::linear::{Linear, Loss, Sparse, TrainOptions};

/// A built-in intent: its name, labels in both languages, and seed examples.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IntentSeed {
    pub name: String,
    pub zh: String,
    pub en: String,
    pub examples: Vec<String>,
}

#[derive(Deserialize)]
struct SeedFile {
    intents: Vec<IntentSeed>,
}

/// The built-in intents with their seed examples (`data/intents.json`).
pub fn builtin() -> Vec<IntentSeed> {
    serde_json::from_str::<SeedFile>(include_str!("../data/intents.json"))
        .map(|f| f.intents)
        .unwrap_or_default()
}

/// Intent names the bot acts on itself.
pub const HUMAN: &str = "human";
pub const COMPLAINT: &str = "complaint";
pub const GREETING: &str = "greeting";
pub const THANKS: &str = "thanks";

/// The default recipe: word uni- and bigrams plus character 1–4-grams, multinomial
/// logistic regression. See docs/benchmarks.md for how it was chosen.
pub const RECIPE: Recipe = Recipe {
    spec: Spec {
        word_max: 2,
        char_min: 1,
        char_max: 4,
        negation: false,
    },
    min_df: 1,
    train: TrainOptions {
        loss: Loss::Logistic,
        c: 20.0,
        max_iterations: 300,
        balanced: false,
    },
};

/// An intent an admin added: its name and labels (the labels are examples too).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdminIntent {
    pub name: String,
    pub zh: String,
    pub en: String,
}

/// Everything the server's model learns from, as (text, intent): the built-in seeds and
/// labels, the admin's intents' labels, and the admin's examples (for any intent).
pub fn training_set(
    intents: &[AdminIntent],
    examples: &[(String, String)],
) -> Vec<(String, String)> {
    let mut set = Vec::new();
    for seed in builtin() {
        for text in seed.examples.iter().chain([&seed.zh, &seed.en]) {
            set.push((text.clone(), seed.name.clone()));
        }
    }
    for intent in intents {
        set.push((intent.zh.clone(), intent.name.clone()));
        set.push((intent.en.clone(), intent.name.clone()));
    }
    set.extend(examples.iter().cloned());
    set
}

/// How a model trained on the same examples reads ones it has not seen.
#[derive(Debug, Clone, Serialize)]
pub struct CrossValidation {
    pub folds: usize,
    pub examples: usize,
    pub accuracy: f64,
    pub macro_f1: f64,
    /// Per intent: examples and the share of them read correctly, weakest first.
    pub per_intent: Vec<IntentScore>,
}

#[derive(Debug, Clone, Serialize)]
pub struct IntentScore {
    pub intent: String,
    pub examples: usize,
    pub recall: f64,
}

/// Stratified k-fold cross-validation: each intent's examples are dealt round the folds
/// in turn, every fold is read by a model trained on the others.
pub fn cross_validate(
    set: &[(String, String)],
    folds: usize,
    encoder: Option<Arc<Encoder>>,
) -> CrossValidation {
    let folds = folds.max(2);
    let mut seen: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let fold_of: Vec<usize> = set
        .iter()
        .map(|(_, label)| {
            let n = seen.entry(label.as_str()).or_default();
            *n += 1;
            (*n - 1) % folds
        })
        .collect();
    let mut pairs = Vec::with_capacity(set.len());
    for fold in 0..folds {
        let train = set
            .iter()
            .zip(&fold_of)
            .filter(|(_, f)| **f != fold)
            .map(|((text, label), _)| (text.as_str(), label.as_str()));
        let model = IntentModel::train_tiered(train, encoder.clone());
        for ((text, label), _) in set.iter().zip(&fold_of).filter(|(_, f)| **f == fold) {
            let got = model.classify(text).map(|g| g.intent).unwrap_or_default();
            pairs.push((label.clone(), got));
        }
    }
    let (accuracy, macro_f1) = crate::eval::classification(&pairs);
    let mut by_intent: std::collections::BTreeMap<&str, (usize, usize)> = Default::default();
    for (gold, got) in &pairs {
        let entry = by_intent.entry(gold.as_str()).or_default();
        entry.0 += 1;
        entry.1 += usize::from(gold == got);
    }
    let mut per_intent: Vec<IntentScore> = by_intent
        .into_iter()
        .map(|(intent, (n, right))| IntentScore {
            intent: intent.to_string(),
            examples: n,
            recall: right as f64 / n as f64,
        })
        .collect();
    per_intent.sort_by(|a, b| a.recall.total_cmp(&b.recall).then(a.intent.cmp(&b.intent)));
    CrossValidation {
        folds,
        examples: set.len(),
        accuracy,
        macro_f1,
        per_intent,
    }
}

/// A trained intent model: the lexical classifier (TF-IDF word and character n-grams,
/// fast, both languages) and, when a sentence encoder is at hand, a second classifier
/// over sentence embeddings, whose reading is mixed in (see [`EMBEDDING_WEIGHT`]).
#[derive(Debug, Clone)]
pub struct IntentModel {
    classifier: Classifier,
    embedding: Option<EmbeddingHead>,
}

/// Logistic regression over sentence embeddings, classes in the lexical classifier's
/// order.
#[derive(Debug, Clone)]
struct EmbeddingHead {
    encoder: Arc<Encoder>,
    model: Linear,
}

/// The embedding classifier's share of the mixed probabilities, by the message's
/// language. The shipped encoder learned English; Chinese leans on the lexical model.
/// Measured on 10-shot BANKING77 (docs/benchmarks.md).
pub const EMBEDDING_WEIGHT: (f32, f32) = (0.7, 0.3);

/// Regularisation of the embedding classifier (scikit-learn's C).
const EMBEDDING_C: f64 = 10.0;

/// Embeddings of texts already seen, so that retraining (every change to the intents)
/// embeds only what is new.
fn embedding_cache() -> &'static Mutex<HashMap<String, Arc<[f32]>>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<[f32]>>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// At most this many embeddings are kept in the cache.
const CACHE_LIMIT: usize = 100_000;

fn embed_cached(encoder: &Encoder, text: &str) -> Arc<[f32]> {
    if let Some(v) = embedding_cache()
        .lock()
        .ok()
        .and_then(|c| c.get(text).cloned())
    {
        return v;
    }
    let v: Arc<[f32]> = encoder.embed(text).into();
    if let Ok(mut cache) = embedding_cache().lock() {
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(text.to_string(), v.clone());
    }
    v
}

fn dense(v: &[f32]) -> Sparse {
    Sparse {
        indices: (0..v.len() as u32).collect(),
        values: v.to_vec(),
    }
}

/// The model's reading of a message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntentGuess {
    pub intent: String,
    pub confidence: f32,
    /// The next most likely intents (at most 3, the first included).
    pub ranked: Vec<Ranked>,
}

impl IntentModel {
    pub fn train<'a>(examples: impl IntoIterator<Item = (&'a str, &'a str)>) -> IntentModel {
        Self::train_with(examples, RECIPE)
    }

    pub fn train_with<'a>(
        examples: impl IntoIterator<Item = (&'a str, &'a str)>,
        recipe: Recipe,
    ) -> IntentModel {
        // An intent's name is one more example of it: "card_arrival" says "card arrival".
        // (Measured: +1 point on 10-shot BANKING77; docs/benchmarks.md.)
        let mut examples: Vec<(String, &str)> = examples
            .into_iter()
            .map(|(text, label)| (text.to_string(), label))
            .collect();
        let mut names: Vec<&str> = examples.iter().map(|e| e.1).collect();
        names.sort_unstable();
        names.dedup();
        for name in names {
            examples.push((name.replace(['_', '-', '.'], " "), name));
        }
        let classifier = Classifier::train(
            examples.iter().map(|(text, label)| (text.as_str(), *label)),
            recipe,
        );
        IntentModel {
            classifier,
            embedding: None,
        }
    }

    /// Trains the lexical classifier and, with `encoder`, the embedding classifier too.
    pub fn train_tiered<'a>(
        examples: impl IntoIterator<Item = (&'a str, &'a str)>,
        encoder: Option<Arc<Encoder>>,
    ) -> IntentModel {
        let examples: Vec<(&str, &str)> = examples.into_iter().collect();
        Self::train(examples.iter().copied()).with_embeddings(&examples, encoder)
    }

    /// Adds the embedding classifier, trained on the same examples (with no encoder,
    /// the model stays lexical).
    pub fn with_embeddings(
        mut self,
        examples: &[(&str, &str)],
        encoder: Option<Arc<Encoder>>,
    ) -> IntentModel {
        let Some(encoder) = encoder else { return self };
        let labels = &self.classifier.labels;
        let index: HashMap<&str, usize> = labels
            .iter()
            .enumerate()
            .map(|(i, l)| (l.as_str(), i))
            .collect();
        let (rows, targets): (Vec<Sparse>, Vec<usize>) = examples
            .iter()
            .filter_map(|(text, label)| {
                let target = *index.get(label)?;
                Some((dense(&embed_cached(&encoder, text)), target))
            })
            .unzip();
        let model = Linear::train(
            &rows,
            &targets,
            labels.len(),
            encoder.dimensions(),
            TrainOptions {
                c: EMBEDDING_C,
                max_iterations: 500,
                ..TrainOptions::default()
            },
        );
        self.embedding = Some(EmbeddingHead { encoder, model });
        self
    }

    /// Whether the embedding tier is part of this model.
    pub fn has_embeddings(&self) -> bool {
        self.embedding.is_some()
    }

    /// Trained on the built-in seeds only, with the shipped encoder.
    pub fn builtin() -> IntentModel {
        Self::with_admin(&[], &[], crate::embed::shipped())
    }

    /// Trained on the built-in seeds plus the intents and examples an admin added, with
    /// the embedding tier when `encoder` is given.
    pub fn with_admin(
        intents: &[AdminIntent],
        examples: &[(String, String)],
        encoder: Option<Arc<Encoder>>,
    ) -> IntentModel {
        let set = training_set(intents, examples);
        Self::train_tiered(
            set.iter()
                .map(|(text, label)| (text.as_str(), label.as_str())),
            encoder,
        )
    }

    pub fn intents(&self) -> &[String] {
        &self.classifier.labels
    }

    /// The lexical reading alone: a fraction of a millisecond, for decisions on every
    /// message.
    pub fn screen(&self, text: &str) -> Option<IntentGuess> {
        Self::guess(self.classifier.rank(text))
    }

    /// The full reading: lexical and, when the model has it, the embedding tier mixed
    /// in (some milliseconds: the encoder runs).
    pub fn classify(&self, text: &str) -> Option<IntentGuess> {
        let Some(head) = &self.embedding else {
            return self.screen(text);
        };
        let lexical = self
            .classifier
            .model
            .probabilities(&self.classifier.vector(text));
        let embedded = head.model.probabilities(&dense(&head.encoder.embed(text)));
        let weight = if crate::normalize::language_of(text) == "zh" {
            EMBEDDING_WEIGHT.1
        } else {
            EMBEDDING_WEIGHT.0
        };
        let mut ranked: Vec<Ranked> = self
            .classifier
            .labels
            .iter()
            .zip(lexical.iter().zip(&embedded))
            .map(|(label, (l, e))| Ranked {
                label: label.clone(),
                probability: weight * e + (1.0 - weight) * l,
            })
            .collect();
        ranked.sort_by(|a, b| b.probability.total_cmp(&a.probability));
        Self::guess(ranked)
    }

    fn guess(ranked: Vec<Ranked>) -> Option<IntentGuess> {
        let first = ranked.first()?.clone();
        Some(IntentGuess {
            intent: first.label,
            confidence: first.probability,
            ranked: ranked.into_iter().take(3).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_intents_cover_the_issue_list_in_both_languages() {
        let seeds = builtin();
        let names: Vec<&str> = seeds.iter().map(|s| s.name.as_str()).collect();
        for name in [
            "order_status",
            "refund_return",
            "complaint",
            "tech_support",
            "invoice",
            "account",
            "payment",
            "logistics",
            "human",
            "greeting",
            "thanks",
        ] {
            assert!(names.contains(&name), "{name}");
        }
        for seed in &seeds {
            let zh = seed
                .examples
                .iter()
                .filter(|e| crate::normalize::language_of(e) == "zh")
                .count();
            assert!(zh >= 8 && seed.examples.len() - zh >= 8, "{}", seed.name);
        }
    }

    #[test]
    fn admin_intents_and_examples_are_learned() {
        let intents = [AdminIntent {
            name: "membership".into(),
            zh: "会员权益".into(),
            en: "membership benefits".into(),
        }];
        let examples: Vec<(String, String)> = [
            ("会员有什么权益", "membership"),
            ("积分怎么兑换", "membership"),
            ("金卡会员能免运费吗", "membership"),
            ("how do I earn loyalty points", "membership"),
            ("what do gold members get", "membership"),
            ("开了会员怎么没有折扣", "membership"),
        ]
        .iter()
        .map(|(t, i)| (t.to_string(), i.to_string()))
        .collect();
        let before = IntentModel::builtin();
        assert!(!before.intents().iter().any(|i| i == "membership"));
        let model = IntentModel::with_admin(&intents, &examples, crate::embed::shipped());
        assert!(model.has_embeddings());
        for text in ["会员积分可以换什么", "do members get free shipping"] {
            let guess = model.classify(text).expect("a guess");
            assert_eq!(guess.intent, "membership", "{text}: {guess:?}");
        }
        // The built-in intents still work.
        assert_eq!(
            model
                .classify("发票抬头能改吗")
                .map(|g| g.intent)
                .as_deref(),
            Some("invoice")
        );
    }

    #[test]
    fn cross_validation_reads_every_example_once() {
        let set = training_set(&[], &[]);
        let cv = cross_validate(&set, 3, None);
        assert_eq!(cv.examples, set.len());
        assert_eq!(
            cv.per_intent.iter().map(|s| s.examples).sum::<usize>(),
            set.len()
        );
        // About 0.70 for the seeds alone (a third held out, the two languages mixed).
        assert!(cv.accuracy > 0.5 && cv.accuracy < 1.0, "{cv:?}");
        assert!(cv.per_intent.windows(2).all(|w| w[0].recall <= w[1].recall));
    }

    #[test]
    fn builtin_model_reads_unseen_messages() {
        let model = IntentModel::builtin();
        let cases = [
            ("我想退貨，怎麼辦理", "refund_return"),
            ("麻烦帮我转一下人工", "human"),
            ("快递三天了还没到", "logistics"),
            ("Can I get a refund for this?", "refund_return"),
            ("I need to speak with a person", "human"),
            ("thank you so much", "thanks"),
            ("发票抬头能改吗", "invoice"),
            ("登录不了，密码不对", "account"),
        ];
        for (text, want) in cases {
            let got = model.classify(text).map(|g| g.intent);
            assert_eq!(got.as_deref(), Some(want), "{text}");
        }
    }
}
