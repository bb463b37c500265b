//! Intents (意图): what a customer wants, from the built-in customer-service intents and
//! the ones an admin adds. The classifier is linear over TF-IDF word and character
//! n-grams, retrained in well under a second for a few thousand examples.

use serde::{Deserialize, Serialize};

use crate::classifier::{Classifier, Ranked, Recipe};
use crate::features::Spec;
use crate::linear::{Loss, TrainOptions};

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

/// A trained intent model.
#[derive(Debug, Clone)]
pub struct IntentModel {
    classifier: Classifier,
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
        IntentModel { classifier }
    }

    /// Trained on the built-in seeds only.
    pub fn builtin() -> IntentModel {
        let seeds = builtin();
        let examples: Vec<(&str, &str)> = seeds
            .iter()
            .flat_map(|s| {
                let labels = [s.zh.as_str(), s.en.as_str()];
                s.examples
                    .iter()
                    .map(String::as_str)
                    .chain(labels)
                    .map(|e| (e, s.name.as_str()))
            })
            .collect();
        Self::train(examples)
    }

    pub fn intents(&self) -> &[String] {
        &self.classifier.labels
    }

    pub fn classify(&self, text: &str) -> Option<IntentGuess> {
        let ranked = self.classifier.rank(text);
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
