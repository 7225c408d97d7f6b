//! The doctor's check after `fit`: whether each BatchNormalization layer's moving statistics —
//! what `evaluate` and `predict` normalise with — still describe the data its input carries under
//! the final weights. With Keras' default momentum 0.99 the moving statistics average roughly the
//! last hundred steps; in a short run the weights move faster than that, the statistics lag, and
//! the model scores far below its training accuracy at test time without any error. Keras says
//! nothing; Kiln measures the lag on a few training batches in inference mode and warns.

use std::sync::Arc;

use kiln_graph::{schedule, LayoutOp, NodeId, PersistentKind, ReduceOp, Shape};

use crate::engine::{Batch, Compiled, Forward, Inputs};
use crate::layers::LayerConfig;
use crate::Result;

/// Batches of the training data measured.
const PROBE_BATCHES: usize = 8;

/// The lag beyond which a layer is reported: the mean shift in standard deviations of the data
/// plus the mean |ln(moving variance / data variance)|. Measured on the residual CNN of
/// `examples/residual_cnn.rs` (seeds 0–2, 625 steps) and the FCN of `examples/fcn_timeseries.rs`
/// (150 epochs): momentum 0.9 leaves every layer at or below 0.35 and tests near its training
/// accuracy; momentum 0.99 leaves the residual CNN's layers at 0.63–0.77 and its test accuracy
/// 0.23–0.47 below its training accuracy.
pub(crate) const MAX_LAG: f64 = 0.5;

/// How far one layer's moving statistics are from its input's, averaged over channels.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Lag {
    pub(crate) layer: String,
    pub(crate) momentum: f32,
    pub(crate) channels: usize,
    /// `|μ_data - μ_moving| / √(σ²_data + ε)`.
    pub(crate) shift: f64,
    /// `|ln((σ²_moving + ε) / (σ²_data + ε))|`.
    pub(crate) log_scale: f64,
}

impl Lag {
    pub(crate) fn lags(&self) -> bool {
        self.shift + self.log_scale > MAX_LAG
    }

    /// The doctor's one warning for the lagging layers `lags` (the worst described).
    fn warning(lagging: &[&Lag]) -> Option<String> {
        let worst = lagging
            .iter()
            .max_by(|a, b| (a.shift + a.log_scale).total_cmp(&(b.shift + b.log_scale)))?;
        let names: Vec<String> = lagging.iter().map(|l| format!("`{}`", l.layer)).collect();
        Some(format!(
            "BatchNormalization moving statistics lag the weights in {} (momentum {}): evaluate and predict \
             normalise with them, but they are far from the statistics of the training data under the final \
             weights (in `{}`, the mean is off by {:.2} standard deviations and the variance by a factor of {:.2}, \
             on average over {} channels), so the model will score well below its training figures at test \
             time. Lower the momentum (0.99 averages about the last 100 steps; 0.9 follows the weights within \
             about 10) or train longer.",
            names.join(", "),
            worst.momentum,
            worst.layer,
            worst.shift,
            worst.log_scale.exp(),
            worst.channels,
        ))
    }
}

impl Compiled {
    /// The lag of every BatchNormalization layer, measured on up to [`PROBE_BATCHES`] batches of
    /// the samples `rows` of `x`, with the layers in inference mode.
    pub(crate) fn moving_statistics_lag(
        &mut self,
        x: &Inputs<'_>,
        rows: &[usize],
        batch_size: usize,
    ) -> Result<Vec<Lag>> {
        // (application, momentum, epsilon, moving mean and variance ids): every application, a
        // shared layer's with the statistics its first one holds.
        let layers: Vec<_> = self
            .network
            .nodes
            .iter()
            .enumerate()
            .filter_map(|(j, app)| {
                let LayerConfig::BatchNormalization(bn) = app.layer.config() else {
                    return None;
                };
                let state: Vec<_> = self.layer_params[self.network.owner(j)]
                    .iter()
                    .copied()
                    .filter(|id| self.specs[id.0].kind == PersistentKind::State)
                    .collect();
                Some((j, bn.get_momentum(), bn.get_epsilon(), state))
            })
            .collect();
        if layers.is_empty() || rows.is_empty() {
            return Ok(Vec::new());
        }
        let batch = batch_size.clamp(1, rows.len());
        let Forward {
            mut g, layer_inputs, ..
        } = self.forward(batch, false)?;
        // Per layer: the per-channel mean and mean square of its input.
        let mut outputs = Vec::new();
        for (j, ..) in &layers {
            let x = layer_inputs[*j][0];
            let shape = g.shape(x)?.clone();
            let channels = shape.last();
            let flat: NodeId = g.push(
                LayoutOp::Reshape {
                    shape: Shape::new([shape.numel() / channels.max(1), channels]),
                },
                &[x],
            )?;
            let squares = g.mul(flat, flat)?;
            outputs.push(g.push(ReduceOp::Mean { axis: 0 }, &[flat])?);
            outputs.push(g.push(ReduceOp::Mean { axis: 0 }, &[squares])?);
        }
        let plan = self.replicas.load(Arc::new(schedule(&g, &outputs)?))?;
        let mut sums: Vec<Vec<f64>> = Vec::new();
        let mut staged = Batch::new(x.0.len());
        let mut measured = 0;
        for chunk in rows.chunks_exact(batch).take(PROBE_BATCHES) {
            staged.gather(x, None, chunk);
            self.replicas.primary().run(plan, &staged.feeds(&self.input_names))?;
            let out = self.replicas.primary().read_outputs(plan)?;
            sums.resize(out.len(), Vec::new());
            for (sum, values) in sums.iter_mut().zip(out) {
                sum.resize(values.len(), 0.0);
                sum.iter_mut().zip(values).for_each(|(s, v)| *s += f64::from(v));
            }
            measured += 1;
        }
        self.replicas.unload(plan)?;
        let mut lags = Vec::with_capacity(layers.len());
        for (k, (j, momentum, epsilon, state)) in layers.iter().enumerate() {
            let [moving_mean, moving_var] = state[..] else {
                continue;
            };
            // A shared layer's statistics follow all its applications' inputs: measure them
            // pooled, once, at its first application.
            let owner = self.network.owner(*j);
            if owner != *j {
                continue;
            }
            let applications: Vec<usize> = (k..layers.len())
                .filter(|&a| self.network.owner(layers[a].0) == owner)
                .collect();
            let (mm, mv) = (
                self.replicas.read_persistent(moving_mean)?,
                self.replicas.read_persistent(moving_var)?,
            );
            let eps = f64::from(*epsilon);
            let channels = sums[2 * k].len();
            let pooled = |offset: usize, c: usize| {
                applications.iter().map(|a| sums[2 * a + offset][c]).sum::<f64>()
                    / (measured * applications.len()) as f64
            };
            let (mut shift, mut log_scale) = (0.0, 0.0);
            for c in 0..channels {
                let mean = pooled(0, c);
                let var = (pooled(1, c) - mean * mean).max(0.0);
                shift += (mean - f64::from(mm[c])).abs() / (var + eps).sqrt();
                log_scale += ((f64::from(mv[c]) + eps) / (var + eps)).ln().abs();
            }
            lags.push(Lag {
                layer: self.network.nodes[*j].name.clone(),
                momentum: *momentum,
                channels,
                shift: shift / channels.max(1) as f64,
                log_scale: log_scale / channels.max(1) as f64,
            });
        }
        Ok(lags)
    }

    /// The doctor's warning, if any layer's moving statistics lag.
    pub(crate) fn moving_statistics_warnings(
        &mut self,
        x: &Inputs<'_>,
        rows: &[usize],
        batch_size: usize,
    ) -> Result<Vec<String>> {
        let lags = self.moving_statistics_lag(x, rows, batch_size)?;
        let lagging: Vec<&Lag> = lags.iter().filter(|l| l.lags()).collect();
        Ok(Lag::warning(&lagging).into_iter().collect())
    }
}
