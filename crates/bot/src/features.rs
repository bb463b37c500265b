//! Sparse features of a message for the classifiers: word n-grams (stemmed words,
//! jieba words) and character n-grams (within Latin words, padded with spaces, and across
//! runs of Chinese characters), TF-IDF weighted and L2-normalised.
//!
//! Features are named by a stable 64-bit hash (FNV-1a) of their kind and text, so a model
//! trained once and shipped reads the same features in every build. A [`Vocabulary`] maps
//! the hashes seen in training to dense indices and holds their IDF.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::linear::Sparse;
use crate::normalize::is_han;
use crate::tokenize::{Kind, Token};

/// Which features to extract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spec {
    /// Longest word n-gram (0 = no word features).
    pub word_max: u8,
    /// Character n-gram lengths (`char_min == 0`: none).
    pub char_min: u8,
    pub char_max: u8,
    /// Mark the words after a negation (不, 没, not, never …) so that 不好 ≠ 好.
    pub negation: bool,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01b3;

fn hash_parts(kind: u8, parts: &[&str]) -> u64 {
    let mut h = FNV_OFFSET;
    let mut eat = |b: u8| {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    };
    eat(kind);
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            eat(0x1f);
        }
        for &b in part.as_bytes() {
            eat(b);
        }
    }
    h
}

const NEGATIONS_ZH: &[&str] = &[
    "不", "没", "没有", "别", "无", "未", "不是", "不会", "不能", "不要", "并不", "从不", "毫无",
];
const NEGATIONS_EN: &[&str] = &[
    "not", "no", "never", "dont", "cant", "wont", "didnt", "isnt", "doesnt", "wasnt", "havent",
    "couldnt", "nor",
];

fn is_negation(token: &Token) -> bool {
    match token.kind {
        Kind::Han => NEGATIONS_ZH.contains(&token.text.as_str()),
        Kind::Word => NEGATIONS_EN.contains(&token.text.as_str()),
        _ => false,
    }
}

/// Feature hashes with their raw counts, for one message. `normalized` is the text the
/// tokens came from (for character n-grams across Chinese runs).
pub fn hashed(spec: Spec, normalized: &str, tokens: &[Token]) -> HashMap<u64, f32> {
    let mut counts: HashMap<u64, f32> = HashMap::new();
    let mut add = |h: u64| *counts.entry(h).or_insert(0.0) += 1.0;
    if spec.word_max > 0 {
        // Negation scope: the next two tokens after a negator, ended early by a mark.
        let mut marked: Vec<String> = Vec::with_capacity(tokens.len());
        let mut scope = 0u8;
        for token in tokens {
            if spec.negation && scope > 0 && token.kind != Kind::Mark && !is_negation(token) {
                marked.push(format!("¬{}", token.text));
                scope -= 1;
            } else {
                marked.push(token.text.clone());
                scope = 0;
            }
            if spec.negation && is_negation(token) {
                scope = 2;
            }
        }
        for n in 1..=spec.word_max as usize {
            for window in marked.windows(n) {
                let parts: Vec<&str> = window.iter().map(String::as_str).collect();
                add(hash_parts(b'w' + n as u8, &parts));
            }
        }
    }
    if spec.char_min > 0 {
        let (lo, hi) = (spec.char_min as usize, spec.char_max as usize);
        let mut grams = |chars: &[char]| {
            let mut buf = String::new();
            for n in lo..=hi {
                for window in chars.windows(n) {
                    if window.iter().all(|&c| c == ' ') {
                        continue;
                    }
                    buf.clear();
                    buf.extend(window);
                    add(hash_parts(b'c', &[&buf]));
                }
            }
        };
        // Chinese: every run of Han characters; Latin: each token padded with spaces.
        let mut run: Vec<char> = Vec::new();
        for c in normalized.chars() {
            if is_han(c) {
                run.push(c);
            } else if !run.is_empty() {
                grams(&run);
                run.clear();
            }
        }
        if !run.is_empty() {
            grams(&run);
        }
        for token in tokens.iter().filter(|t| t.kind == Kind::Word) {
            let padded: Vec<char> = std::iter::once(' ')
                .chain(token.text.chars())
                .chain(std::iter::once(' '))
                .collect();
            grams(&padded);
        }
    }
    counts
}

/// Feature hashes seen in training, their dense indices and inverse document frequency.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Vocabulary {
    pub spec: Option<Spec>,
    index: HashMap<u64, u32>,
    idf: Vec<f32>,
    /// How many documents the vocabulary was fitted on.
    documents: usize,
}

impl Vocabulary {
    /// Builds the vocabulary from the training documents' hashed features, keeping those
    /// in at least `min_df` documents. IDF is smoothed: ln((1+n)/(1+df)) + 1.
    pub fn fit(spec: Spec, documents: &[HashMap<u64, f32>], min_df: usize) -> Vocabulary {
        let mut df: HashMap<u64, usize> = HashMap::new();
        for doc in documents {
            for &h in doc.keys() {
                *df.entry(h).or_insert(0) += 1;
            }
        }
        let mut kept: Vec<(u64, usize)> = df.into_iter().filter(|&(_, d)| d >= min_df).collect();
        kept.sort_unstable();
        let n = documents.len() as f32;
        let mut index = HashMap::with_capacity(kept.len());
        let mut idf = Vec::with_capacity(kept.len());
        for (i, (h, d)) in kept.into_iter().enumerate() {
            index.insert(h, i as u32);
            idf.push(((1.0 + n) / (1.0 + d as f32)).ln() + 1.0);
        }
        Vocabulary {
            spec: Some(spec),
            index,
            idf,
            documents: documents.len(),
        }
    }

    pub fn len(&self) -> usize {
        self.idf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.idf.is_empty()
    }

    /// The TF-IDF vector (sublinear tf: 1 + ln tf), L2-normalised; unknown features dropped
    /// before normalising (as scikit-learn does: right for classifiers).
    pub fn vector(&self, counts: &HashMap<u64, f32>) -> Sparse {
        self.vector_inner(counts, false)
    }

    /// As [`Self::vector`], but unknown features count in the norm with the highest IDF,
    /// as a word seen nowhere would: a message is only as similar to a stored question as
    /// the share of it that the question covers. Right for similarity search.
    pub fn query_vector(&self, counts: &HashMap<u64, f32>) -> Sparse {
        self.vector_inner(counts, true)
    }

    fn vector_inner(&self, counts: &HashMap<u64, f32>, unknown_count: bool) -> Sparse {
        // A feature no training document had gets the IDF of one seen in no document.
        let unseen_idf = (1.0 + self.documents as f32).ln() + 1.0;
        let mut unknown = 0.0f32;
        let mut pairs: Vec<(u32, f32)> = counts
            .iter()
            .filter_map(|(h, &tf)| match self.index.get(h) {
                Some(&i) => Some((i, (1.0 + tf.ln()) * self.idf[i as usize])),
                None => {
                    let w = (1.0 + tf.ln()) * unseen_idf;
                    unknown += w * w;
                    None
                }
            })
            .collect();
        pairs.sort_unstable_by_key(|p| p.0);
        let known = pairs.iter().map(|p| p.1 * p.1).sum::<f32>();
        let norm = if unknown_count {
            known + unknown
        } else {
            known
        }
        .sqrt();
        let scale = if norm > 0.0 { 1.0 / norm } else { 0.0 };
        Sparse {
            indices: pairs.iter().map(|p| p.0).collect(),
            values: pairs.iter().map(|p| p.1 * scale).collect(),
        }
    }

    /// Entries as (hash, idf) pairs in index order, for writing a model file.
    pub fn entries(&self) -> Vec<(u64, f32)> {
        let mut out = vec![(0u64, 0f32); self.idf.len()];
        for (&h, &i) in &self.index {
            out[i as usize] = (h, self.idf[i as usize]);
        }
        out
    }

    /// Rebuilds a vocabulary written with [`Self::entries`]. (The document count only
    /// matters for [`Self::query_vector`], which shipped models do not use.)
    pub fn from_entries(spec: Spec, entries: Vec<(u64, f32)>) -> Vocabulary {
        let mut index = HashMap::with_capacity(entries.len());
        let mut idf = Vec::with_capacity(entries.len());
        for (i, (h, v)) in entries.into_iter().enumerate() {
            index.insert(h, i as u32);
            idf.push(v);
        }
        let documents = idf
            .iter()
            .map(|&v| ((v - 1.0).exp() - 1.0).round() as usize)
            .max()
            .unwrap_or(0);
        Vocabulary {
            spec: Some(spec),
            index,
            idf,
            documents,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::normalize;
    use crate::tokenize::tokens;

    fn features(spec: Spec, raw: &str) -> HashMap<u64, f32> {
        let n = normalize(raw);
        hashed(spec, &n, &tokens(&n))
    }

    const WORDS: Spec = Spec {
        word_max: 2,
        char_min: 0,
        char_max: 0,
        negation: true,
    };

    #[test]
    fn negation_changes_the_words_it_covers() {
        let good = features(WORDS, "质量好");
        let not_good = features(WORDS, "质量不好");
        let shared = good.keys().filter(|h| not_good.contains_key(h)).count();
        // "质量" is shared; "好" under 不 is a different feature.
        assert_eq!(shared, 1, "{good:?} {not_good:?}");
    }

    #[test]
    fn hashes_are_stable_across_builds() {
        // A shipped model depends on these values never changing.
        assert_eq!(hash_parts(b'c', &["退"]), 0xa46b_d68e_9a72_1309);
    }

    #[test]
    fn tfidf_vectors_are_unit_length_and_ignore_unknown_features() {
        let spec = Spec {
            word_max: 1,
            char_min: 1,
            char_max: 2,
            negation: false,
        };
        let docs = vec![features(spec, "我要退款"), features(spec, "退货 refund")];
        let vocab = Vocabulary::fit(spec, &docs, 1);
        let v = vocab.vector(&features(spec, "退款 unknownword"));
        let norm: f32 = v.values.iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-5);
        assert!(vocab.vector(&features(spec, "zzz")).is_empty());
    }
}
