//! A text classifier: normalise → tokens → TF-IDF word and character n-grams → a linear
//! model. Intents and sentiment are both this, with their own feature recipe.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::features::{self, Spec, Vocabulary};
use crate::linear::{Linear, Sparse, TrainOptions};
use crate::normalize::normalize;
use crate::tokenize::tokens;

/// How a classifier is built: its features and its linear model.
#[derive(Debug, Clone, Copy)]
pub struct Recipe {
    pub spec: Spec,
    pub min_df: usize,
    pub train: TrainOptions,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Classifier {
    pub labels: Vec<String>,
    pub vocabulary: Vocabulary,
    pub model: Linear,
}

/// One class and its probability.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ranked {
    pub label: String,
    pub probability: f32,
}

pub fn hashed_features(spec: Spec, text: &str) -> HashMap<u64, f32> {
    let normalized = normalize(text);
    features::hashed(spec, &normalized, &tokens(&normalized))
}

impl Classifier {
    /// Trains on `(text, label)` pairs. Labels keep their first-seen order.
    pub fn train<'a>(
        examples: impl IntoIterator<Item = (&'a str, &'a str)>,
        recipe: Recipe,
    ) -> Classifier {
        Self::train_weighted(examples.into_iter().map(|(t, l)| (t, l, 1.0)), recipe)
    }

    /// Trains on `(text, label, weight)`: an example of weight 2 counts as two.
    pub fn train_weighted<'a>(
        examples: impl IntoIterator<Item = (&'a str, &'a str, f32)>,
        recipe: Recipe,
    ) -> Classifier {
        let mut labels: Vec<String> = Vec::new();
        let mut label_index: HashMap<String, usize> = HashMap::new();
        let mut documents = Vec::new();
        let mut targets = Vec::new();
        let mut weights = Vec::new();
        for (text, label, weight) in examples {
            weights.push(weight);
            let next = labels.len();
            let index = *label_index.entry(label.to_string()).or_insert_with(|| {
                labels.push(label.to_string());
                next
            });
            documents.push(hashed_features(recipe.spec, text));
            targets.push(index);
        }
        let vocabulary = Vocabulary::fit(recipe.spec, &documents, recipe.min_df);
        let rows: Vec<Sparse> = documents.iter().map(|d| vocabulary.vector(d)).collect();
        let model = Linear::train_weighted(
            &rows,
            &targets,
            &weights,
            labels.len(),
            vocabulary.len(),
            recipe.train,
        );
        Classifier {
            labels,
            vocabulary,
            model,
        }
    }

    /// A classifier that knows no features: every text gets the same (uniform) answer.
    pub fn empty(labels: &[&str]) -> Classifier {
        let classes = labels.len().max(1);
        Classifier {
            labels: labels.iter().map(|l| l.to_string()).collect(),
            vocabulary: Vocabulary::default(),
            model: Linear {
                classes,
                features: 0,
                loss: crate::linear::Loss::Logistic,
                weights: Vec::new(),
                bias: vec![0.0; classes],
            },
        }
    }

    pub fn spec(&self) -> Option<Spec> {
        self.vocabulary.spec
    }

    /// The feature vector of a text under this classifier's vocabulary.
    pub fn vector(&self, text: &str) -> Sparse {
        match self.vocabulary.spec {
            Some(spec) => self.vocabulary.vector(&hashed_features(spec, text)),
            None => Sparse::default(),
        }
    }

    /// All classes by falling probability.
    pub fn rank(&self, text: &str) -> Vec<Ranked> {
        self.rank_vector(&self.vector(text))
    }

    pub fn rank_vector(&self, vector: &Sparse) -> Vec<Ranked> {
        if self.labels.is_empty() {
            return Vec::new();
        }
        let probabilities = self.model.probabilities(vector);
        let mut ranked: Vec<Ranked> = self
            .labels
            .iter()
            .zip(probabilities)
            .map(|(label, probability)| Ranked {
                label: label.clone(),
                probability,
            })
            .collect();
        ranked.sort_by(|a, b| b.probability.total_cmp(&a.probability));
        ranked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_words_and_characters_in_both_languages() {
        let recipe = Recipe {
            spec: Spec {
                word_max: 2,
                char_min: 1,
                char_max: 3,
                negation: true,
            },
            min_df: 1,
            train: TrainOptions::default(),
        };
        let examples = [
            ("我要退款", "refund"),
            ("怎么退货", "refund"),
            ("I want a refund", "refund"),
            ("我的快递到哪了", "logistics"),
            ("物流怎么还没更新", "logistics"),
            ("where is my parcel", "logistics"),
        ];
        let model = Classifier::train(examples, recipe);
        assert_eq!(model.rank("申請退款")[0].label, "refund");
        assert_eq!(model.rank("Refunds please")[0].label, "refund");
        assert_eq!(model.rank("快遞什麼時候到")[0].label, "logistics");
        let ranked = model.rank("");
        assert_eq!(ranked.len(), 2);
    }
}
