//! The binary form of a trained classifier, for models shipped inside kefu
//! (`crates/bot/models/*.bin`): little-endian, versioned by a magic string.
//!
//! ```text
//! "KEFUCLF1" | spec: word_max char_min char_max negation (u8 each) | loss u8
//! labels: u32 count, then u32 length + UTF-8 each
//! features: u32 count, then per feature u64 hash, f32 idf, f32 weight × classes
//! biases: f32 × classes
//! ```

use crate::classifier::Classifier;
use crate::features::{Spec, Vocabulary};
use crate::linear::{Linear, Loss};

const MAGIC: &[u8; 8] = b"KEFUCLF1";

pub fn write(classifier: &Classifier) -> Vec<u8> {
    let spec = classifier.vocabulary.spec.unwrap_or(Spec {
        word_max: 0,
        char_min: 0,
        char_max: 0,
        negation: false,
    });
    let model = &classifier.model;
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[
        spec.word_max,
        spec.char_min,
        spec.char_max,
        u8::from(spec.negation),
    ]);
    out.push(match model.loss {
        Loss::Logistic => 0,
        Loss::SquaredHinge => 1,
    });
    out.extend_from_slice(&(classifier.labels.len() as u32).to_le_bytes());
    for label in &classifier.labels {
        out.extend_from_slice(&(label.len() as u32).to_le_bytes());
        out.extend_from_slice(label.as_bytes());
    }
    let entries = classifier.vocabulary.entries();
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for (i, (hash, idf)) in entries.iter().enumerate() {
        out.extend_from_slice(&hash.to_le_bytes());
        out.extend_from_slice(&idf.to_le_bytes());
        for k in 0..model.classes {
            out.extend_from_slice(&model.weights[i * model.classes + k].to_le_bytes());
        }
    }
    for b in &model.bias {
        out.extend_from_slice(&b.to_le_bytes());
    }
    out
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        if self.bytes.len() < n {
            return Err("model file is truncated".into());
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn f32(&mut self) -> Result<f32, String> {
        Ok(f32::from_bits(self.u32()?))
    }
    fn u64(&mut self) -> Result<u64, String> {
        let lo = u64::from(self.u32()?);
        let hi = u64::from(self.u32()?);
        Ok(lo | (hi << 32))
    }
}

pub fn read(bytes: &[u8]) -> Result<Classifier, String> {
    let mut r = Reader { bytes };
    if r.take(8)? != MAGIC {
        return Err("not a kefu model file".into());
    }
    let spec = Spec {
        word_max: r.u8()?,
        char_min: r.u8()?,
        char_max: r.u8()?,
        negation: r.u8()? != 0,
    };
    let loss = match r.u8()? {
        0 => Loss::Logistic,
        1 => Loss::SquaredHinge,
        other => return Err(format!("unknown loss {other}")),
    };
    let n_labels = r.u32()? as usize;
    let mut labels = Vec::with_capacity(n_labels.min(10_000));
    for _ in 0..n_labels {
        let len = r.u32()? as usize;
        let text = std::str::from_utf8(r.take(len)?).map_err(|e| e.to_string())?;
        labels.push(text.to_string());
    }
    let classes = labels.len();
    let n_features = r.u32()? as usize;
    if r.bytes.len() < n_features.saturating_mul(12 + 4 * classes) {
        return Err("model file is truncated".into());
    }
    let mut entries = Vec::with_capacity(n_features);
    let mut weights = Vec::with_capacity(n_features * classes);
    for _ in 0..n_features {
        entries.push((r.u64()?, r.f32()?));
        for _ in 0..classes {
            weights.push(r.f32()?);
        }
    }
    let mut bias = Vec::with_capacity(classes);
    for _ in 0..classes {
        bias.push(r.f32()?);
    }
    if !r.bytes.is_empty() {
        return Err("model file has trailing bytes".into());
    }
    Ok(Classifier {
        labels,
        vocabulary: Vocabulary::from_entries(spec, entries),
        model: Linear {
            classes,
            features: n_features,
            loss,
            weights,
            bias,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classifier::Recipe;
    use crate::linear::TrainOptions;

    #[test]
    fn a_model_reads_back_as_it_was_written() {
        let recipe = Recipe {
            spec: Spec {
                word_max: 2,
                char_min: 1,
                char_max: 2,
                negation: true,
            },
            min_df: 1,
            train: TrainOptions::default(),
        };
        let model = Classifier::train([("很好", "pos"), ("不好", "neg"), ("good", "pos")], recipe);
        let bytes = write(&model);
        let back = read(&bytes).expect("reads");
        assert_eq!(back.labels, model.labels);
        assert_eq!(back.rank("很好"), model.rank("很好"));
        assert!(read(&bytes[..bytes.len() - 1]).is_err());
        assert!(read(b"garbage").is_err());
        assert!(read(&[]).is_err());
    }
}
