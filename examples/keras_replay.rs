//! Replays a Keras training run step for step: the initial weights and the batch order that
//! `benches/keras/trace.py` recorded from Keras, trained with Kiln one `train_on_batch` at a time.
//! Prints Kiln's batch losses beside Keras', how far they drift apart, and both test accuracies.
//!
//! With their own seeds, Keras and Kiln draw different initial weights and shuffles, so a few
//! seeds' accuracies are samples from two distributions; a replay takes the generators out and
//! compares the engines themselves. Runs with dropout cannot be replayed (each engine draws its own
//! masks), so the traces cover the FCN and the recurrent models.
//!
//! `cargo run --release --example keras_replay DIR [DIR ...]` — `KILN_DEVICE=cpu|gpu`.

use kiln::graph::Backend;
use kiln::prelude::*;
use std::path::{Path, PathBuf};

#[path = "fcn_timeseries.rs"]
#[allow(dead_code)]
mod fcn_timeseries;
#[path = "lstm_timeseries.rs"]
#[allow(dead_code)]
mod lstm_timeseries;
#[path = "mnist.rs"]
#[allow(dead_code)]
mod mnist;
#[path = "residual_cnn.rs"]
#[allow(dead_code)]
mod residual_cnn;
#[path = "transformer_timeseries.rs"]
#[allow(dead_code)]
mod transformer_timeseries;

/// One recorded Keras run (`trace.json`, `order.npy`, `losses.npy`, `init.safetensors`).
pub struct Trace {
    pub dir: PathBuf,
    pub model: String,
    pub set: String,
    pub seed: u64,
    pub batch: usize,
    pub momentum: f32,
    /// Keras' test accuracy after the whole run.
    pub test_accuracy: f32,
    /// The training rows of each epoch, in the order they were fed.
    pub order: Vec<Vec<usize>>,
    /// Keras' loss for each batch, before that batch's update.
    pub losses: Vec<f32>,
    /// The same run computed by Keras in float64: how far rounding alone carries a run.
    pub losses_f64: Vec<f32>,
    pub test_accuracy_f64: f32,
}

fn invalid(what: impl Into<String>) -> Error {
    Error::invalid("keras_replay", what.into())
}

impl Trace {
    pub fn read(dir: impl AsRef<Path>) -> Result<Trace> {
        let dir = dir.as_ref().to_path_buf();
        let text = std::fs::read_to_string(dir.join("trace.json"))
            .map_err(|e| invalid(format!("{}: {e}", dir.join("trace.json").display())))?;
        let meta: serde_json::Value = serde_json::from_str(&text).map_err(|e| invalid(format!("trace.json: {e}")))?;
        let text_of = |key: &str| {
            meta[key]
                .as_str()
                .map(String::from)
                .ok_or_else(|| invalid(format!("trace.json has no {key}")))
        };
        let number = |key: &str| {
            meta[key]
                .as_f64()
                .ok_or_else(|| invalid(format!("trace.json has no {key}")))
        };
        let order = kiln::data::read_npy(dir.join("order.npy"))?;
        let n = order.shape().get(1).copied().unwrap_or(0);
        let order = order
            .data()
            .chunks(n.max(1))
            .map(|rows| rows.iter().map(|&r| r as usize).collect())
            .collect();
        let losses = kiln::data::read_npy(dir.join("losses.npy"))?.data().to_vec();
        let losses_f64 = kiln::data::read_npy(dir.join("losses_f64.npy"))?.data().to_vec();
        Ok(Trace {
            model: text_of("model")?,
            set: text_of("set")?,
            seed: number("seed")? as u64,
            batch: number("batch")? as usize,
            momentum: number("momentum")? as f32,
            test_accuracy: number("test_accuracy")? as f32,
            test_accuracy_f64: number("test_accuracy_f64")? as f32,
            order,
            losses,
            losses_f64,
            dir,
        })
    }

    /// The traced model, compiled on `device` with Keras' initial weights loaded.
    pub fn model(&self, device: &dyn Backend, data: &datasets::Dataset) -> Result<Model> {
        let dims = data.x_train.shape();
        let classes = data.y_train.data().iter().fold(0.0f32, |m, &v| m.max(v)) as usize + 1;
        let mut model = match self.model.as_str() {
            "fcn" => fcn_timeseries::fcn(dims[1], dims[2], classes, self.momentum, self.seed).into_model(),
            "lstm" | "gru" => lstm_timeseries::model(&self.model, dims[1], dims[2], classes, self.seed).into_model(),
            "transformer" => transformer_timeseries::transformer(dims[1], dims[2], classes, 0.0, self.seed)?,
            "resnet" => residual_cnn::residual_cnn(self.momentum, self.seed)?,
            other => return Err(invalid(format!("no replay for model {other}"))),
        };
        model.compile(
            device,
            Optimizer::adam(),
            Loss::SparseCategoricalCrossentropy,
            &[Metric::Accuracy],
        )?;
        model.load_weights(self.dir.join("init.safetensors"))?;
        Ok(model)
    }
}

/// What Kiln did with a trace's weights and batches.
pub struct Replay {
    pub losses: Vec<f32>,
    /// NaN where the replay was not evaluated.
    pub test_accuracy: f32,
    /// Every weight after the last batch (empty where the replay was not evaluated).
    pub weights: Vec<kiln::nn::Weight>,
}

/// The trace's data as `benches/keras/trace.py` loads it: a UCR set, or `mnist` (the bundled
/// sample, pixels / 255, `[n, 28, 28, 1]`).
pub fn dataset(set: &str) -> Result<datasets::Dataset> {
    if set != "mnist" {
        return Ok(datasets::ucr(set)?);
    }
    let mut data = datasets::mnist()?;
    data.x_train = mnist::images(&data.x_train)?;
    data.x_test = mnist::images(&data.x_test)?;
    Ok(data)
}

/// Trains the traced model with Kiln on the trace's batches, in Keras' order, as many as the
/// trace recorded; with `evaluate`, measures the test accuracy after them and reads the weights back.
pub fn replay(device: &dyn Backend, trace: &Trace, evaluate: bool) -> Result<Replay> {
    let data = dataset(&trace.set)?;
    let mut model = trace.model(device, &data)?;
    let mut losses = Vec::new();
    let batches = trace.order.iter().flat_map(|rows| rows.chunks(trace.batch));
    for batch in batches.take(trace.losses.len()) {
        let x = data.x_train.try_select_rows(batch)?;
        let y = data.y_train.try_select_rows(batch)?;
        losses.push(model.train_on_batch(&x, &y)?);
    }
    if !evaluate {
        return Ok(Replay {
            losses,
            test_accuracy: f32::NAN,
            weights: Vec::new(),
        });
    }
    let result = model.evaluate(&data.x_test, &data.y_test, 64)?;
    Ok(Replay {
        losses,
        test_accuracy: result.get("accuracy").unwrap_or(0.0),
        weights: model.weights()?,
    })
}

/// The weights a trace file holds (`final.safetensors`, `final_f64.safetensors`), by Kiln's names.
pub fn trace_weights(device: &dyn Backend, trace: &Trace, file: &str) -> Result<Vec<kiln::nn::Weight>> {
    let mut model = trace.model(device, &dataset(&trace.set)?)?;
    model.load_weights(trace.dir.join(file))?;
    model.weights()
}

/// The largest |a − b| of each weight, largest first.
pub fn weight_drift(a: &[kiln::nn::Weight], b: &[kiln::nn::Weight]) -> Vec<(String, f32)> {
    let mut d: Vec<(String, f32)> = a
        .iter()
        .zip(b)
        .map(|(x, y)| {
            let worst = x
                .values
                .iter()
                .zip(&y.values)
                .map(|(p, q)| (p - q).abs())
                .fold(0.0, f32::max);
            (x.name.clone(), worst)
        })
        .collect();
    d.sort_by(|p, q| q.1.total_cmp(&p.1));
    d
}

/// The largest |Kiln − Keras| over the first `steps` batch losses.
pub fn drift(kiln: &[f32], keras: &[f32], steps: usize) -> f32 {
    kiln.iter()
        .zip(keras)
        .take(steps)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

fn main() -> Result<()> {
    let dirs: Vec<String> = std::env::args().skip(1).collect();
    if dirs.is_empty() {
        return Err(invalid(
            "usage: keras_replay DIR [DIR ...] (traces written by benches/keras/trace.py)",
        ));
    }
    let device = Device::auto()?;
    println!("device: {}", device.name());
    let mut sums = [0.0f32; 3];
    for dir in &dirs {
        let trace = Trace::read(dir)?;
        let start = std::time::Instant::now();
        let run = replay(&device, &trace, true)?;
        let all = run.losses.len();
        let spans: Vec<usize> = [1, 10, 40, 100].into_iter().filter(|&s| s < all).chain([all]).collect();
        println!(
            "{} {} seed {} ({} batches):",
            trace.model,
            trace.set,
            trace.seed,
            run.losses.len()
        );
        let header: Vec<String> = spans.iter().map(|s| format!("{s:>8}")).collect();
        println!("  largest |Δ batch loss| over the first {} batches", header.join(""));
        for (name, a, b) in [
            ("Kiln vs Keras float64", &run.losses, &trace.losses_f64),
            ("Keras float32 vs Keras float64", &trace.losses, &trace.losses_f64),
            ("Kiln vs Keras float32", &run.losses, &trace.losses),
        ] {
            let cells: Vec<String> = spans.iter().map(|&s| format!("{:>8.1e}", drift(a, b, s))).collect();
            println!("  {name:<38}{}", cells.join(""));
        }
        let first: Vec<String> = (run.losses.iter().zip(&trace.losses_f64))
            .take(12)
            .map(|(a, b)| format!("{:.1e}", (a - b).abs()))
            .collect();
        println!("  |Δ| of Kiln's first batches from float64: {}", first.join(" "));
        if trace.dir.join("final_f64.safetensors").exists() {
            // Where the weights parted: the three that drifted most from the float64 run.
            let f64_weights = trace_weights(&device, &trace, "final_f64.safetensors")?;
            let f32_weights = trace_weights(&device, &trace, "final.safetensors")?;
            let keras = weight_drift(&f32_weights, &f64_weights);
            for (name, d) in weight_drift(&run.weights, &f64_weights).into_iter().take(3) {
                let k = keras.iter().find(|(n, _)| *n == name).map_or(f32::NAN, |p| p.1);
                println!("  weight {name}: largest |Δ| from float64 Kiln {d:.1e}, Keras float32 {k:.1e}");
            }
        }
        println!(
            "  test accuracy: Kiln {:.4}, Keras float32 {:.4}, Keras float64 {:.4} ({:.1}s)",
            run.test_accuracy,
            trace.test_accuracy,
            trace.test_accuracy_f64,
            start.elapsed().as_secs_f32()
        );
        for (sum, acc) in sums
            .iter_mut()
            .zip([run.test_accuracy, trace.test_accuracy, trace.test_accuracy_f64])
        {
            *sum += acc;
        }
    }
    let n = dirs.len() as f32;
    println!(
        "mean test accuracy over {} traces: Kiln {:.4}, Keras float32 {:.4}, Keras float64 {:.4}",
        dirs.len(),
        sums[0] / n,
        sums[1] / n,
        sums[2] / n
    );
    Ok(())
}
