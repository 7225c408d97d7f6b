//! What fit prints: a live bar per epoch (loss, ETA) on a terminal at verbosity 1, otherwise one
//! plain line per epoch.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Progress of one epoch.
pub(crate) struct EpochProgress {
    bar: Option<ProgressBar>,
    last_loss_read: Instant,
    epoch: usize,
    epochs: usize,
    started: Instant,
}

/// How often the bar's loss is refreshed: reading it waits for the device.
const LOSS_EVERY: Duration = Duration::from_millis(250);

impl EpochProgress {
    /// Starts epoch `epoch` of `epochs` with `steps` batches; silent at verbosity 0.
    pub fn start(verbose: u8, epoch: usize, epochs: usize, steps: usize) -> Self {
        let live = verbose == 1 && std::io::stdout().is_terminal();
        let bar = live.then(|| {
            let bar = ProgressBar::new(steps as u64);
            bar.set_style(
                ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ETA {eta}")
                    .expect("static template")
                    .progress_chars("=> "),
            );
            bar.set_prefix(format!("Epoch {epoch}/{epochs}"));
            bar
        });
        EpochProgress {
            bar,
            last_loss_read: Instant::now(),
            epoch,
            epochs,
            started: Instant::now(),
        }
    }

    /// Whether the caller should read the current loss back for the bar now.
    pub fn wants_loss(&self) -> bool {
        self.bar.is_some() && self.last_loss_read.elapsed() >= LOSS_EVERY
    }

    /// One batch done, with the loss if it was read.
    pub fn step(&mut self, loss: Option<f32>) {
        if let Some(bar) = &self.bar {
            if let Some(l) = loss {
                bar.set_message(format!("loss: {l:.4}"));
                self.last_loss_read = Instant::now();
            }
            bar.inc(1);
        }
    }

    /// The epoch's summary: the bar finishes with it, or it is printed as a line.
    pub fn finish(self, verbose: u8, logs: &[(String, f32)]) {
        let parts: Vec<String> = logs.iter().map(|(n, v)| format!("{n}: {v:.4}")).collect();
        let seconds = self.started.elapsed().as_secs_f32();
        match self.bar {
            Some(bar) => {
                bar.set_style(
                    ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}")
                        .expect("static template")
                        .progress_chars("=> "),
                );
                bar.finish_with_message(format!("{:.1}s - {}", seconds, parts.join(" - ")));
            }
            None if verbose > 0 => {
                println!(
                    "Epoch {}/{} - {seconds:.2}s - {}",
                    self.epoch,
                    self.epochs,
                    parts.join(" - ")
                )
            }
            None => {}
        }
    }
}
