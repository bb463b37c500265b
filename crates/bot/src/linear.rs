//! Linear classifiers over sparse features, trained to the exact optimum of a convex
//! objective with L-BFGS: multinomial logistic regression (probabilities for the bot's
//! confidence) and one-vs-rest squared-hinge SVMs. Both are regularised the way
//! scikit-learn's `LogisticRegression` / `LinearSVC` are (`C · Σ loss + ½‖w‖²`, intercepts
//! not penalised), so a recipe tuned there means the same thing here.

use serde::{Deserialize, Serialize};

/// A sparse, L2-normalised feature vector: sorted feature indices and their values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sparse {
    pub indices: Vec<u32>,
    pub values: Vec<f32>,
}

impl Sparse {
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// Calls `f(i, j)` for every feature both vectors have (positions in each).
    fn shared(&self, other: &Sparse, mut f: impl FnMut(usize, usize)) {
        let (mut i, mut j) = (0, 0);
        while i < self.indices.len() && j < other.indices.len() {
            match self.indices[i].cmp(&other.indices[j]) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    f(i, j);
                    i += 1;
                    j += 1;
                }
            }
        }
    }

    /// The share of this (unit) vector's mass on features `other` also has: how much of a
    /// message a question covers, however much more the question says.
    pub fn coverage(&self, other: &Sparse) -> f32 {
        let mut sum = 0.0;
        self.shared(other, |i, _| sum += self.values[i] * self.values[i]);
        sum
    }

    pub fn dot(&self, other: &Sparse) -> f32 {
        let mut sum = 0.0;
        self.shared(other, |i, j| sum += self.values[i] * other.values[j]);
        sum
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Loss {
    /// Softmax cross-entropy over all classes at once.
    Logistic,
    /// One-vs-rest squared hinge (as LinearSVC).
    SquaredHinge,
}

/// Weights of a trained model: `weights[feature * classes + class]`, one bias per class.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Linear {
    pub classes: usize,
    pub features: usize,
    pub loss: Loss,
    pub weights: Vec<f32>,
    pub bias: Vec<f32>,
}

#[derive(Debug, Clone, Copy)]
pub struct TrainOptions {
    pub loss: Loss,
    /// Inverse regularisation strength, as scikit-learn's `C`.
    pub c: f64,
    pub max_iterations: usize,
    /// Classes weighted inversely to their frequency (scikit-learn's `balanced`).
    pub balanced: bool,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            loss: Loss::Logistic,
            c: 10.0,
            max_iterations: 200,
            balanced: false,
        }
    }
}

impl Linear {
    /// Trains on `rows` labelled `labels[i] < classes`. Features are `< features`.
    pub fn train(
        rows: &[Sparse],
        labels: &[usize],
        classes: usize,
        features: usize,
        options: TrainOptions,
    ) -> Linear {
        Self::train_weighted(
            rows,
            labels,
            &vec![1.0; rows.len()],
            classes,
            features,
            options,
        )
    }

    /// As [`Linear::train`], with a weight per row (how much that example counts in the
    /// loss, on top of class balancing).
    pub fn train_weighted(
        rows: &[Sparse],
        labels: &[usize],
        row_weights: &[f32],
        classes: usize,
        features: usize,
        options: TrainOptions,
    ) -> Linear {
        assert_eq!(rows.len(), labels.len());
        assert_eq!(rows.len(), row_weights.len());
        let classes = classes.max(1);
        let mut counts = vec![0usize; classes];
        for &label in labels {
            counts[label] += 1;
        }
        let sample_weight: Vec<f64> = labels
            .iter()
            .zip(row_weights)
            .map(|(&l, &w)| {
                let class_weight = if options.balanced {
                    rows.len() as f64 / (classes as f64 * counts[l].max(1) as f64)
                } else {
                    1.0
                };
                class_weight * w as f64
            })
            .collect();
        let n_weights = features * classes;
        let objective = |params: &[f64], grad: &mut [f64]| -> f64 {
            objective(
                params,
                grad,
                rows,
                labels,
                &sample_weight,
                classes,
                n_weights,
                options,
            )
        };
        let params = lbfgs(
            vec![0.0; n_weights + classes],
            objective,
            options.max_iterations,
        );
        Linear {
            classes,
            features,
            loss: options.loss,
            weights: params[..n_weights].iter().map(|&w| w as f32).collect(),
            bias: params[n_weights..].iter().map(|&w| w as f32).collect(),
        }
    }

    /// Raw scores, one per class.
    pub fn scores(&self, row: &Sparse) -> Vec<f32> {
        let mut scores = self.bias.clone();
        for (&feature, &value) in row.indices.iter().zip(&row.values) {
            let feature = feature as usize;
            if feature >= self.features {
                continue;
            }
            let base = feature * self.classes;
            for (class, score) in scores.iter_mut().enumerate() {
                *score += self.weights[base + class] * value;
            }
        }
        scores
    }

    /// Class probabilities: the softmax of the scores (for the hinge loss a softmax of
    /// margins, which orders like probabilities but is not calibrated).
    pub fn probabilities(&self, row: &Sparse) -> Vec<f32> {
        softmax(&self.scores(row))
    }
}

pub fn softmax(scores: &[f32]) -> Vec<f32> {
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = scores.iter().map(|s| (s - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

#[allow(clippy::too_many_arguments)]
fn objective(
    params: &[f64],
    grad: &mut [f64],
    rows: &[Sparse],
    labels: &[usize],
    sample_weight: &[f64],
    classes: usize,
    n_weights: usize,
    options: TrainOptions,
) -> f64 {
    let (weights, bias) = params.split_at(n_weights);
    grad.iter_mut().for_each(|g| *g = 0.0);
    let mut loss = 0.0;
    let mut scores = vec![0.0f64; classes];
    let mut dscores = vec![0.0f64; classes];
    for ((row, &label), &sw) in rows.iter().zip(labels).zip(sample_weight) {
        scores.copy_from_slice(bias);
        for (&f, &v) in row.indices.iter().zip(&row.values) {
            let base = f as usize * classes;
            for (k, s) in scores.iter_mut().enumerate() {
                *s += weights[base + k] * v as f64;
            }
        }
        match options.loss {
            Loss::Logistic => {
                let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let sum: f64 = scores.iter().map(|s| (s - max).exp()).sum();
                let log_z = max + sum.ln();
                loss += sw * (log_z - scores[label]);
                for k in 0..classes {
                    let p = (scores[k] - log_z).exp();
                    dscores[k] = sw * (p - if k == label { 1.0 } else { 0.0 });
                }
            }
            Loss::SquaredHinge => {
                for k in 0..classes {
                    let y = if k == label { 1.0 } else { -1.0 };
                    let margin = 1.0 - y * scores[k];
                    if margin > 0.0 {
                        loss += sw * margin * margin;
                        dscores[k] = -2.0 * sw * y * margin;
                    } else {
                        dscores[k] = 0.0;
                    }
                }
            }
        }
        for (&f, &v) in row.indices.iter().zip(&row.values) {
            let base = f as usize * classes;
            for k in 0..classes {
                grad[base + k] += dscores[k] * v as f64;
            }
        }
        for k in 0..classes {
            grad[n_weights + k] += dscores[k];
        }
    }
    // C · Σ loss + ½‖w‖² (intercepts not penalised).
    let c = options.c;
    let mut reg = 0.0;
    for (g, &w) in grad[..n_weights].iter_mut().zip(weights) {
        *g = c * *g + w;
        reg += w * w;
    }
    for g in &mut grad[n_weights..] {
        *g *= c;
    }
    c * loss + 0.5 * reg
}

/// Minimises a smooth convex function with L-BFGS (10 corrections) and a backtracking
/// line search. `f(x, grad)` returns the value and writes the gradient.
pub fn lbfgs(
    mut x: Vec<f64>,
    mut f: impl FnMut(&[f64], &mut [f64]) -> f64,
    max_iterations: usize,
) -> Vec<f64> {
    const MEMORY: usize = 10;
    let n = x.len();
    let mut grad = vec![0.0; n];
    let mut value = f(&x, &mut grad);
    let mut history: std::collections::VecDeque<(Vec<f64>, Vec<f64>, f64)> =
        std::collections::VecDeque::new();
    let mut direction = vec![0.0; n];
    let mut next_x = vec![0.0; n];
    let mut next_grad = vec![0.0; n];
    let norm = |v: &[f64]| v.iter().map(|a| a * a).sum::<f64>().sqrt();
    let initial_grad_norm = norm(&grad).max(1e-12);
    for _ in 0..max_iterations {
        if norm(&grad) <= 1e-5 * initial_grad_norm {
            break;
        }
        // Two-loop recursion: direction = -H·grad.
        direction.copy_from_slice(&grad);
        let mut alphas = Vec::with_capacity(history.len());
        for (s, y, rho) in history.iter().rev() {
            let alpha = rho * dot(s, &direction);
            axpy(-alpha, y, &mut direction);
            alphas.push(alpha);
        }
        if let Some((s, y, _)) = history.back() {
            let gamma = dot(s, y) / dot(y, y).max(1e-300);
            direction.iter_mut().for_each(|d| *d *= gamma);
        } else {
            let scale = 1.0 / norm(&grad).max(1e-12);
            direction.iter_mut().for_each(|d| *d *= scale);
        }
        for ((s, y, rho), alpha) in history.iter().zip(alphas.into_iter().rev()) {
            let beta = rho * dot(y, &direction);
            axpy(alpha - beta, s, &mut direction);
        }
        direction.iter_mut().for_each(|d| *d = -*d);
        let slope = dot(&grad, &direction);
        if slope >= 0.0 {
            // Not a descent direction (numerical trouble): restart from steepest descent.
            history.clear();
            continue;
        }
        let mut step = 1.0;
        let mut accepted = false;
        for _ in 0..30 {
            for i in 0..n {
                next_x[i] = x[i] + step * direction[i];
            }
            let next_value = f(&next_x, &mut next_grad);
            if next_value <= value + 1e-4 * step * slope {
                let s: Vec<f64> = (0..n).map(|i| next_x[i] - x[i]).collect();
                let y: Vec<f64> = (0..n).map(|i| next_grad[i] - grad[i]).collect();
                let sy = dot(&s, &y);
                if sy > 1e-12 {
                    if history.len() == MEMORY {
                        history.pop_front();
                    }
                    history.push_back((s, y, 1.0 / sy));
                }
                std::mem::swap(&mut x, &mut next_x);
                std::mem::swap(&mut grad, &mut next_grad);
                let improvement = value - next_value;
                value = next_value;
                // Stop once an iteration gains less than a millionth: further digits of
                // the optimum change no prediction (and cost most of the time).
                accepted = improvement > 1e-6 * value.abs().max(1.0);
                break;
            }
            step *= 0.5;
        }
        if !accepted {
            break;
        }
    }
    x
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn axpy(alpha: f64, x: &[f64], y: &mut [f64]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pairs: &[(u32, f32)]) -> Sparse {
        Sparse {
            indices: pairs.iter().map(|p| p.0).collect(),
            values: pairs.iter().map(|p| p.1).collect(),
        }
    }

    #[test]
    fn lbfgs_finds_the_minimum_of_a_quadratic() {
        let x = lbfgs(
            vec![0.0, 0.0],
            |x, g| {
                g[0] = 2.0 * (x[0] - 3.0);
                g[1] = 20.0 * (x[1] + 1.0);
                (x[0] - 3.0).powi(2) + 10.0 * (x[1] + 1.0).powi(2)
            },
            100,
        );
        assert!(
            (x[0] - 3.0).abs() < 1e-4 && (x[1] + 1.0).abs() < 1e-4,
            "{x:?}"
        );
    }

    #[test]
    fn both_losses_separate_three_classes() {
        let rows = vec![
            row(&[(0, 1.0)]),
            row(&[(0, 0.8), (3, 0.6)]),
            row(&[(1, 1.0)]),
            row(&[(1, 0.8), (3, 0.6)]),
            row(&[(2, 1.0)]),
            row(&[(2, 0.8), (3, 0.6)]),
        ];
        let labels = vec![0, 0, 1, 1, 2, 2];
        for loss in [Loss::Logistic, Loss::SquaredHinge] {
            let options = TrainOptions {
                loss,
                ..TrainOptions::default()
            };
            let model = Linear::train(&rows, &labels, 3, 4, options);
            for (r, &l) in rows.iter().zip(&labels) {
                let p = model.probabilities(r);
                let best = (0..3)
                    .max_by(|&a, &b| p[a].total_cmp(&p[b]))
                    .unwrap_or_default();
                assert_eq!(best, l, "{loss:?} {p:?}");
            }
            // A feature seen with every class says nothing.
            let p = model.probabilities(&row(&[(3, 1.0)]));
            assert!(p.iter().all(|&x| (x - 1.0 / 3.0).abs() < 0.05), "{p:?}");
        }
    }

    #[test]
    fn logistic_probabilities_are_calibrated_on_noisy_labels() {
        // One feature seen 30 times with class 0 and 10 times with class 1: with weak
        // regularisation the model should say ~75 %.
        let mut rows = Vec::new();
        let mut labels = Vec::new();
        for i in 0..40 {
            rows.push(row(&[(0, 1.0)]));
            labels.push(usize::from(i >= 30));
        }
        let options = TrainOptions {
            c: 1000.0,
            ..TrainOptions::default()
        };
        let model = Linear::train(&rows, &labels, 2, 1, options);
        let p = model.probabilities(&row(&[(0, 1.0)]));
        assert!((p[0] - 0.75).abs() < 0.01, "{p:?}");
    }
}
