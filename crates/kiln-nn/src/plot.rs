//! `History` as a picture and as a table: one PNG panel per quantity (loss, each metric) with its
//! training and validation curves per epoch, and a CSV with one row per epoch.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::OnceLock;

use plotters::prelude::*;

use crate::History;
use crate::{Error, Result};

/// The font labels are drawn in (DejaVu Sans Mono, unmodified; licence beside it), so plots look
/// the same on every machine, fonts installed or not.
static FONT: &[u8] = include_bytes!("../assets/DejaVuSansMono.ttf");
const FAMILY: &str = "kiln-mono";

fn io(path: &Path, message: impl ToString) -> Error {
    Error::Io {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

impl History {
    /// Epoch numbers of the recorded values (they start after `initial_epoch` when resumed).
    pub fn epoch_numbers(&self) -> Vec<usize> {
        (0..self.epochs()).map(|i| self.first_epoch.max(1) + i).collect()
    }

    /// `(epoch, value)` of `name` for every epoch that recorded it: each epoch for training
    /// quantities, [`History::validation_epochs`] for `val_` ones.
    pub fn series(&self, name: &str) -> Vec<(usize, f32)> {
        let values = self.get(name).unwrap_or_default();
        let epochs = if name.starts_with("val_") && self.validation_epochs.len() == values.len() {
            self.validation_epochs.clone()
        } else {
            self.epoch_numbers()
        };
        epochs.into_iter().zip(values.iter().copied()).collect()
    }

    /// The history as CSV: an `epoch` column, then one column per quantity (blank in the epochs
    /// that did not record it, as validation every few epochs leaves them).
    pub fn to_csv(&self) -> String {
        let mut s = String::from("epoch");
        for (name, _) in &self.metrics {
            s += ",";
            s += name;
        }
        s += "\n";
        let columns: Vec<Vec<(usize, f32)>> = self.metrics.iter().map(|(name, _)| self.series(name)).collect();
        for epoch in self.epoch_numbers() {
            let _ = write!(s, "{epoch}");
            for column in &columns {
                let value = column.iter().find(|(e, _)| *e == epoch).map(|(_, v)| v);
                let _ = write!(s, ",{}", value.map_or(String::new(), f32::to_string));
            }
            s += "\n";
        }
        s
    }

    /// Writes [`History::to_csv`] to `path`.
    pub fn write_csv(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        std::fs::write(path, self.to_csv()).map_err(|e| io(path, e))
    }

    /// Draws the loss and each metric per epoch, training and validation curves together, as a PNG
    /// of one panel per quantity.
    pub fn plot(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        if self.epochs() == 0 {
            return Err(Error::invalid("History::plot", "no epochs recorded"));
        }
        static REGISTERED: OnceLock<bool> = OnceLock::new();
        if !*REGISTERED.get_or_init(|| plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok()) {
            return Err(io(path, "the bundled font did not load"));
        }
        let panels: Vec<&str> = self
            .metrics
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| !n.starts_with("val_"))
            .collect();
        let columns = panels.len().min(2);
        let rows = panels.len().div_ceil(columns);
        let size = (480 * columns as u32, 320 * rows as u32);
        let root = BitMapBackend::new(path, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| io(path, e))?;
        let epochs = self.epoch_numbers();
        let x_range = epochs[0] as f32..(epochs[epochs.len() - 1] as f32).max(epochs[0] as f32 + 1.0);
        for (area, name) in root.split_evenly((rows, columns)).iter().zip(panels) {
            let train = self.series(name);
            let val = self.series(&format!("val_{name}"));
            let (lo, hi) = train
                .iter()
                .chain(&val)
                .map(|(_, v)| v)
                .filter(|v| v.is_finite())
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
                    (lo.min(v), hi.max(v))
                });
            // Only finite values count (a diverged run logs NaN); with none, any range will do.
            let (lo, hi) = if lo <= hi {
                (f64::from(lo), f64::from(hi))
            } else {
                (0.0, 1.0)
            };
            let pad = ((hi - lo) * 0.08).max(1e-3);
            let (lo, hi) = ((lo - pad).max(-1e30) as f32, (hi + pad).min(1e30) as f32);
            let mut chart = ChartBuilder::on(area)
                .caption(name, (FAMILY, 20))
                .margin(12)
                .x_label_area_size(32)
                .y_label_area_size(56)
                .build_cartesian_2d(x_range.clone(), lo..hi)
                .map_err(|e| io(path, e))?;
            chart
                .configure_mesh()
                .x_desc("epoch")
                .x_labels(epochs.len().clamp(2, 10))
                .x_label_formatter(&|x| format!("{x:.0}"))
                .label_style((FAMILY, 13))
                .draw()
                .map_err(|e| io(path, e))?;
            for (values, label, color) in [(train, "train", BLUE), (val, "validation", RED)] {
                if values.is_empty() {
                    continue;
                }
                let points = values
                    .into_iter()
                    .filter(|(_, v)| v.is_finite())
                    .map(|(e, v)| (e as f32, v.clamp(lo, hi)));
                chart
                    .draw_series(LineSeries::new(points, color.stroke_width(2)))
                    .map_err(|e| io(path, e))?
                    .label(label)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
            }
            chart
                .configure_series_labels()
                .label_font((FAMILY, 13))
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| io(path, e))?;
        }
        root.present().map_err(|e| io(path, e))
    }
}
