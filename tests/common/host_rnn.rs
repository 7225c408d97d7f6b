//! Keras' recurrent step formulas on the host in f64 (keras/src/layers/rnn/lstm.py and gru.py,
//! `call` of the cells), the reference the recurrent layers' tests compare with.

use kiln::data::Tensor;
use kiln::nn::Weight;

/// The logistic function.
fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// `v [rows]` · `w [rows, cols]`, in f64.
fn product(v: &[f64], w: &[f32], cols: usize) -> Vec<f64> {
    (0..cols)
        .map(|j| v.iter().enumerate().map(|(i, &a)| a * f64::from(w[i * cols + j])).sum())
        .collect()
}

/// `a + b`, elementwise.
fn plus(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x + y).collect()
}

/// Bias row `row` of a `[rows, width]` bias (row 0 of a flat one), in f64.
fn bias_row(w: &Weight, row: usize, width: usize) -> Vec<f64> {
    w.values[row * width..(row + 1) * width]
        .iter()
        .map(|&b| f64::from(b))
        .collect()
}

/// Keras' LSTM over one sequence `[steps][features]`: every step's `h`, in the order read.
pub fn host_lstm(seq: &[Vec<f64>], w: &[Weight], units: usize) -> Vec<Vec<f64>> {
    host_lstm_from(seq, w, [vec![0.0; units], vec![0.0; units]]).0
}

/// Keras' LSTM over one sequence from the state `[h₀, c₀]`: every step's `h` in the order read,
/// and the final `c`.
pub fn host_lstm_from(seq: &[Vec<f64>], w: &[Weight], [mut h, mut c]: [Vec<f64>; 2]) -> (Vec<Vec<f64>>, Vec<f64>) {
    let units = h.len();
    let mut out = Vec::new();
    for x in seq {
        let recurrent = product(&h, &w[1].values, 4 * units);
        let z = plus(
            &plus(&product(x, &w[0].values, 4 * units), &recurrent),
            &bias_row(&w[2], 0, 4 * units),
        );
        for k in 0..units {
            let (i, f) = (sigmoid(z[k]), sigmoid(z[units + k]));
            let (cand, o) = (z[2 * units + k].tanh(), sigmoid(z[3 * units + k]));
            c[k] = f * c[k] + i * cand;
            h[k] = o * c[k].tanh();
        }
        out.push(h.clone());
    }
    (out, c)
}

/// Keras' GRU (either reset placement) over one sequence: every step's `h`, in the order read.
/// With `reset_after` the bias is `[input bias; recurrent bias]`, else one input bias.
pub fn host_gru(seq: &[Vec<f64>], w: &[Weight], units: usize, reset_after: bool) -> Vec<Vec<f64>> {
    host_gru_from(seq, w, reset_after, vec![0.0; units])
}

/// Keras' GRU over one sequence from the state `h₀`: every step's `h`, in the order read.
pub fn host_gru_from(seq: &[Vec<f64>], w: &[Weight], reset_after: bool, mut h: Vec<f64>) -> Vec<Vec<f64>> {
    let units = h.len();
    let width = 3 * units;
    let b_in = bias_row(&w[2], 0, width);
    let b_rec = if reset_after {
        bias_row(&w[2], 1, width)
    } else {
        vec![0.0; width]
    };
    let mut out = Vec::new();
    for x in seq {
        let xw = plus(&product(x, &w[0].values, width), &b_in);
        let hu = plus(&product(&h, &w[1].values, width), &b_rec);
        let z: Vec<f64> = (0..units).map(|k| sigmoid(xw[k] + hu[k])).collect();
        let r: Vec<f64> = (0..units).map(|k| sigmoid(xw[units + k] + hu[units + k])).collect();
        // Without reset_after the candidate's recurrent product reads r ⊙ h.
        let reset: Vec<f64> = h.iter().zip(&r).map(|(a, b)| a * b).collect();
        let before = product(&reset, &w[1].values, width);
        h = (0..units)
            .map(|k| {
                let j = 2 * units + k;
                let recurrent = if reset_after { r[k] * hu[j] } else { before[j] };
                let candidate = (xw[j] + recurrent).tanh();
                z[k] * h[k] + (1.0 - z[k]) * candidate
            })
            .collect();
        out.push(h.clone());
    }
    out
}

/// The sequences of `x [n, steps, features]` as f64 rows, optionally each read backwards.
pub fn sequences(x: &Tensor, reverse: bool) -> Vec<Vec<Vec<f64>>> {
    let [n, steps, features] = x.shape().try_into().unwrap();
    (0..n)
        .map(|s| {
            let mut seq: Vec<Vec<f64>> = (0..steps)
                .map(|t| {
                    let at = (s * steps + t) * features;
                    x.data()[at..at + features].iter().map(|&v| f64::from(v)).collect()
                })
                .collect();
            if reverse {
                seq.reverse();
            }
            seq
        })
        .collect()
}
