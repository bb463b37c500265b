//! Groups near-duplicate questions (相似问题聚类) so that admins see the topics the
//! knowledge base lacks, not every wording of them: "周末几点开门" and "你们周末几点开门？"
//! are one gap. TF-IDF over words and character n-grams (fitted on the questions
//! themselves), cosine similarity, and leader clustering in order of how often each was
//! asked: a question joins the most similar group whose first question it resembles at
//! least `threshold`, or starts a group of its own.

use crate::classifier::hashed_features;
use crate::features::{Spec, Vocabulary};
use crate::linear::Sparse;

/// Word uni/bigrams and character 1–3-grams: wording changes, the topic's words stay.
const SPEC: Spec = Spec {
    word_max: 2,
    char_min: 1,
    char_max: 3,
    negation: false,
};

/// The similarity above which two questions are treated as the same gap.
pub const THRESHOLD: f32 = 0.4;

/// Groups `questions` (most asked first); each group lists indexes into `questions`, its
/// first question first. Groups come in the order of their first question.
pub fn group(questions: &[&str], threshold: f32) -> Vec<Vec<usize>> {
    let documents: Vec<_> = questions.iter().map(|q| hashed_features(SPEC, q)).collect();
    let vocabulary = Vocabulary::fit(SPEC, &documents, 1);
    let vectors: Vec<Sparse> = documents.iter().map(|d| vocabulary.vector(d)).collect();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, vector) in vectors.iter().enumerate() {
        let best = groups
            .iter()
            .enumerate()
            .map(|(g, members)| (g, vectors[members[0]].dot(vector)))
            .filter(|&(_, similarity)| similarity >= threshold)
            .max_by(|a, b| a.1.total_cmp(&b.1));
        match best {
            Some((g, _)) => groups[g].push(i),
            None => groups.push(vec![i]),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wordings_of_one_question_group_and_topics_stay_apart() {
        let questions = [
            "你们周末几点开门",
            "退款多久到账",
            "周末几点开门？",
            "How can I change my delivery address?",
            "你們週末幾點開門",
            "how do I change my delivery address",
            "怎么开发票",
            "退款要多久才到账",
            "do you open on sundays",
            "发票怎么开",
            "what time do you open on sunday",
        ];
        let groups = group(&questions, THRESHOLD);
        let named: Vec<Vec<&str>> = groups
            .iter()
            .map(|g| g.iter().map(|&i| questions[i]).collect())
            .collect();
        assert_eq!(
            named,
            vec![
                vec!["你们周末几点开门", "周末几点开门？", "你們週末幾點開門"],
                vec!["退款多久到账", "退款要多久才到账"],
                vec![
                    "How can I change my delivery address?",
                    "how do I change my delivery address"
                ],
                vec!["怎么开发票", "发票怎么开"],
                vec!["do you open on sundays", "what time do you open on sunday"],
            ]
        );
    }

    #[test]
    fn nothing_and_unreadable_input_are_fine() {
        assert!(group(&[], THRESHOLD).is_empty());
        let groups = group(&["", "🙂", "？？"], THRESHOLD);
        assert_eq!(groups.iter().map(Vec::len).sum::<usize>(), 3);
    }
}
