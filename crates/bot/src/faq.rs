//! FAQ retrieval (知识库检索): which knowledge-base entry answers a message, and how sure
//! the bot may be.
//!
//! Every question of an entry — the standard question and its similar questions
//! (相似问法) — is a document in an in-memory tantivy index, as jieba words and stemmed
//! English words (field `words`) and Chinese character bigrams (field `grams`, for the
//! words jieba cuts differently). BM25 finds up to [`CANDIDATES`] questions; each is then
//! re-scored by the cosine of TF-IDF word and character n-gram vectors, entries keep
//! their best question, and the confidence is a logistic function of the best score and
//! its margin over the runner-up, fitted on held-out questions (see [`Calibration`]).
//! Queries are built term by term, so no user text is ever parsed as query syntax.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use tantivy::collector::TopDocs;
use tantivy::columnar::Column;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
use tantivy::schema::{FAST, Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions};
use tantivy::tokenizer::{TextAnalyzer, WhitespaceTokenizer};
use tantivy::{Index, IndexReader, TantivyDocument, Term};

use crate::features::{self, Spec, Vocabulary};
use crate::linear::Sparse;
use crate::normalize::{is_han, normalize};
use crate::tokenize::{Kind, tokens};

/// Questions BM25 hands to the re-scoring.
pub const CANDIDATES: usize = 40;

/// A knowledge-base entry as the bot sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaqEntry {
    pub id: String,
    pub question: String,
    #[serde(default)]
    pub similar: Vec<String>,
    #[serde(default)]
    pub answer: String,
}

/// How scores become probabilities: that the first entry answers the message,
/// `σ(bias + top · w_top + top · margin · w_margin)` (a margin counts only as far as the
/// best question is similar at all: a lone weak match is not a sure one), and that one of the first three does,
/// `σ(top3_bias + top3 · top3_w_top + coverage · top3_w_coverage)`, where top3 is the best
/// similarity among the first three and coverage the share of the message its question covers (what a clarifying question can
/// offer: "发票" is covered by every invoice question and matches none of them well).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub bias: f32,
    pub w_top: f32,
    pub w_margin: f32,
    pub top3_bias: f32,
    pub top3_w_top: f32,
    pub top3_w_coverage: f32,
}

/// Fitted with `kefu bot calibrate` on BANKING77 questions: 10 per intent as the entries'
/// questions, every other example as a message, and every 5th intent left out of the
/// knowledge base so that a fifth of the messages have no right answer (seed 2 of
/// `scripts/bot-dev-splits`; docs/benchmarks.md has the reliability table).
pub const CALIBRATION: Calibration = Calibration {
    bias: -1.735,
    w_top: 2.176,
    w_margin: 16.399,
    top3_bias: -3.065,
    top3_w_top: 7.737,
    top3_w_coverage: 0.463,
};

const SPEC: Spec = Spec {
    word_max: 2,
    char_min: 1,
    char_max: 3,
    negation: false,
};

/// Weight of BM25 (relative to the best candidate's) in the ranking. Confidence uses the
/// cosine alone: relative BM25 is 1 for the best candidate of any message, however poor.
const BM25_WEIGHT: f32 = 0.3;

struct Question {
    entry: usize,
    /// 0: the standard question; k: the k-th similar question.
    variant: usize,
    vector: Sparse,
}

/// The searchable form of a knowledge base. Built once per change and shared read-only.
pub struct FaqIndex {
    entries: Vec<FaqEntry>,
    questions: Vec<Question>,
    vocabulary: Vocabulary,
    reader: IndexReader,
    /// Per index segment: document → question number.
    question_columns: Vec<Column<u64>>,
    words: Field,
    grams: Field,
    calibration: Calibration,
}

/// One entry the bot considered, best first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Match {
    pub id: String,
    pub question: String,
    /// Cosine similarity of the message and the entry's best question, 0 … 1.
    pub score: f32,
}

/// The entries that may answer a message and how sure the bot is of the first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Retrieval {
    pub matches: Vec<Match>,
    /// Probability that the first match answers the message.
    pub confidence: f32,
    /// Probability that one of the first three matches does.
    pub top3_confidence: f32,
    /// Share of the message the first match's question covers (0 … 1).
    pub coverage: f32,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot build the FAQ index: {0}")]
pub struct IndexError(String);

impl From<tantivy::TantivyError> for IndexError {
    fn from(e: tantivy::TantivyError) -> Self {
        IndexError(e.to_string())
    }
}

/// Words and Chinese character bigrams of normalised text, as index terms.
fn terms(normalized: &str) -> (Vec<String>, Vec<String>) {
    let words: Vec<String> = tokens(normalized)
        .into_iter()
        .filter(|t| t.kind != Kind::Mark)
        .map(|t| t.text)
        .collect();
    let mut grams = Vec::new();
    let mut run: Vec<char> = Vec::new();
    let flush = |run: &mut Vec<char>, grams: &mut Vec<String>| {
        if run.len() == 1 {
            grams.push(run[0].to_string());
        }
        for pair in run.windows(2) {
            grams.push(pair.iter().collect());
        }
        run.clear();
    };
    for c in normalized.chars() {
        if is_han(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut grams);
        }
    }
    flush(&mut run, &mut grams);
    (words, grams)
}

impl FaqIndex {
    pub fn build(entries: Vec<FaqEntry>) -> Result<FaqIndex, IndexError> {
        Self::build_with(entries, CALIBRATION)
    }

    pub fn build_with(
        entries: Vec<FaqEntry>,
        calibration: Calibration,
    ) -> Result<FaqIndex, IndexError> {
        let mut schema = Schema::builder();
        let text = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer("ws")
                .set_index_option(IndexRecordOption::WithFreqs),
        );
        let words = schema.add_text_field("words", text.clone());
        let grams = schema.add_text_field("grams", text);
        let question_field = schema.add_u64_field("question", FAST);
        let index = Index::create_in_ram(schema.build());
        index
            .tokenizers()
            .register("ws", TextAnalyzer::from(WhitespaceTokenizer::default()));
        let mut writer = index.writer_with_num_threads::<TantivyDocument>(1, 15_000_000)?;

        let mut questions = Vec::new();
        let mut documents = Vec::new();
        for (entry_index, entry) in entries.iter().enumerate() {
            let all = std::iter::once(&entry.question).chain(&entry.similar);
            for (variant, question) in all.enumerate() {
                let normalized = normalize(question);
                if normalized.is_empty() {
                    continue;
                }
                let (w, g) = terms(&normalized);
                let mut doc = TantivyDocument::default();
                doc.add_text(words, w.join(" "));
                doc.add_text(grams, g.join(" "));
                doc.add_u64(question_field, questions.len() as u64);
                writer.add_document(doc)?;
                documents.push(features::hashed(SPEC, &normalized, &tokens(&normalized)));
                questions.push((entry_index, variant));
            }
        }
        writer.commit()?;
        let vocabulary = Vocabulary::fit(SPEC, &documents, 1);
        let questions = questions
            .into_iter()
            .zip(&documents)
            .map(|((entry, variant), doc)| Question {
                entry,
                variant,
                vector: vocabulary.vector(doc),
            })
            .collect();
        let reader = index.reader()?;
        let question_columns = reader
            .searcher()
            .segment_readers()
            .iter()
            .map(|segment| segment.fast_fields().u64("question"))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(FaqIndex {
            entries,
            questions,
            vocabulary,
            reader,
            question_columns,
            words,
            grams,
            calibration,
        })
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entry(&self, id: &str) -> Option<&FaqEntry> {
        self.entries.iter().find(|e| e.id == id)
    }

    pub fn entries(&self) -> &[FaqEntry] {
        &self.entries
    }

    /// The entries that best match `message`, at most `limit`, and the confidence in the
    /// first. An empty or unreadable message matches nothing with confidence 0.
    pub fn search(&self, message: &str, limit: usize) -> Retrieval {
        let nothing = Retrieval {
            matches: Vec::new(),
            confidence: 0.0,
            top3_confidence: 0.0,
            coverage: 0.0,
        };
        let normalized = normalize(message);
        let (words, grams) = terms(&normalized);
        if words.is_empty() && grams.is_empty() {
            return nothing;
        }
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (field, list, boost) in [(self.words, &words, 1.0), (self.grams, &grams, 0.5)] {
            for term in list.iter().take(256) {
                if !seen.insert((field, term.as_str())) {
                    continue;
                }
                let query = TermQuery::new(
                    Term::from_field_text(field, term),
                    IndexRecordOption::WithFreqs,
                );
                clauses.push((
                    Occur::Should,
                    Box::new(BoostQuery::new(Box::new(query), boost)),
                ));
            }
        }
        let searcher = self.reader.searcher();
        let hits = match searcher.search(
            &BooleanQuery::new(clauses),
            &TopDocs::with_limit(CANDIDATES).order_by_score(),
        ) {
            Ok(hits) => hits,
            Err(_) => return nothing,
        };
        let top_bm25 = hits.first().map(|h| h.0).unwrap_or(0.0).max(f32::EPSILON);
        let query_vector = self.vocabulary.query_vector(&features::hashed(
            SPEC,
            &normalized,
            &tokens(&normalized),
        ));
        // Best question per entry: (ranking score, cosine, question).
        let mut best: HashMap<usize, (f32, f32, usize)> = HashMap::new();
        for (bm25, address) in hits {
            let Some(q) = self.question_at(address) else {
                continue;
            };
            let question = &self.questions[q];
            let cosine = query_vector.dot(&question.vector);
            let rank_score = cosine + BM25_WEIGHT * bm25 / top_bm25;
            let slot = best.entry(question.entry).or_insert((f32::MIN, 0.0, q));
            if rank_score > slot.0 {
                *slot = (rank_score, cosine, q);
            }
        }
        let mut ranked: Vec<(usize, f32, f32, usize)> = best
            .into_iter()
            .map(|(e, (r, c, q))| (e, r, c, q))
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let top = ranked.first().map(|r| r.2).unwrap_or(0.0);
        let second = ranked.get(1).map(|r| r.2).unwrap_or(0.0);
        // For the top-3 probability: the best of the three and how much of the message it covers.
        let best3 = ranked.iter().take(3).max_by(|a, b| a.2.total_cmp(&b.2));
        let top3 = best3.map(|r| r.2).unwrap_or(0.0);
        let coverage = best3
            .map(|r| query_vector.coverage(&self.questions[r.3].vector))
            .unwrap_or(0.0);
        let (confidence, top3_confidence) = if ranked.is_empty() {
            (0.0, 0.0)
        } else {
            (
                self.calibration.probability(top, (top - second).max(0.0)),
                self.calibration.top3_probability(top3, coverage),
            )
        };
        let matches = ranked
            .into_iter()
            .take(limit)
            .map(|(entry, _, cosine, q)| Match {
                id: self.entries[entry].id.clone(),
                question: self.question_text(q).to_string(),
                score: cosine,
            })
            .collect();
        Retrieval {
            matches,
            confidence,
            top3_confidence,
            coverage,
        }
    }

    fn question_at(&self, address: tantivy::DocAddress) -> Option<usize> {
        let column = self.question_columns.get(address.segment_ord as usize)?;
        let q = column.first(address.doc_id)? as usize;
        (q < self.questions.len()).then_some(q)
    }

    /// The text of question number `q` (standard question or a similar one).
    fn question_text(&self, q: usize) -> &str {
        let question = &self.questions[q];
        let entry = &self.entries[question.entry];
        match question.variant {
            0 => &entry.question,
            k => entry.similar.get(k - 1).unwrap_or(&entry.question),
        }
    }
}

impl Calibration {
    pub fn probability(&self, top: f32, margin: f32) -> f32 {
        let z = self.bias + self.w_top * top + self.w_margin * margin * top;
        1.0 / (1.0 + (-z).exp())
    }

    pub fn top3_probability(&self, top: f32, coverage: f32) -> f32 {
        let z = self.top3_bias + self.top3_w_top * top + self.top3_w_coverage * coverage;
        1.0 / (1.0 + (-z).exp())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, question: &str, similar: &[&str]) -> FaqEntry {
        FaqEntry {
            id: id.into(),
            question: question.into(),
            similar: similar.iter().map(|s| s.to_string()).collect(),
            answer: format!("answer {id}"),
        }
    }

    fn kb() -> FaqIndex {
        FaqIndex::build(vec![
            entry(
                "refund",
                "怎么申请退款",
                &["退款多久到账", "How do I get a refund?"],
            ),
            entry(
                "invoice",
                "如何开发票",
                &["发票抬头填错了怎么办", "Can I get an invoice?"],
            ),
            entry(
                "shipping",
                "快递一般几天到",
                &["发什么快递", "How long does delivery take?"],
            ),
            entry("password", "忘记密码怎么办", &["I forgot my password"]),
        ])
        .expect("index")
    }

    #[test]
    fn finds_entries_by_standard_and_similar_questions_in_both_languages() {
        let kb = kb();
        for (message, want) in [
            ("退款什么时候能到账", "refund"),
            ("我想开一张发票", "invoice"),
            ("快遞幾天能到", "shipping"),
            ("how long will delivery take", "shipping"),
            ("ＦＯＲＧＯＴ MY PASSWORD", "password"),
            ("refunds", "refund"),
        ] {
            let r = kb.search(message, 3);
            assert_eq!(
                r.matches.first().map(|m| m.id.as_str()),
                Some(want),
                "{message}: {r:?}"
            );
        }
    }

    #[test]
    fn an_exact_question_is_confident_and_an_unrelated_one_is_not() {
        let kb = kb();
        let exact = kb.search("忘记密码怎么办", 3);
        let unrelated = kb.search("你们的办公室在哪个城市", 3);
        assert!(exact.confidence > 0.8, "{exact:?}");
        assert!(unrelated.confidence < 0.3, "{unrelated:?}");
        assert_eq!(exact.matches[0].question, "忘记密码怎么办");
        let similar = kb.search("I forgot my password", 1);
        assert_eq!(similar.matches[0].question, "I forgot my password");
    }

    #[test]
    fn bad_input_matches_nothing_and_never_panics() {
        let kb = kb();
        let binary = String::from_utf8_lossy(&[0xff, 0xfe, 0x00, 0x01]).into_owned();
        for message in [
            "",
            "   ",
            "?!?!",
            binary.as_str(),
            "AND OR NOT \"(*:",
            &"退款".repeat(50_000),
        ] {
            let r = kb.search(message, 3);
            assert!(r.confidence <= 1.0 && r.matches.len() <= 3, "{message:.20}");
        }
        assert!(kb.search("", 3).matches.is_empty());
        let empty = FaqIndex::build(Vec::new()).expect("empty index");
        assert!(empty.search("退款", 3).matches.is_empty());
    }
}
