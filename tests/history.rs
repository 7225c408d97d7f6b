//! History as a plot and as CSV: the PNG decodes to a real picture with both curves drawn, and the
//! CSV holds one row per epoch, numbered on from a resumed run's first epoch.

mod common;

use kiln::cpu::CpuBackend;
use kiln::prelude::*;

fn trained(epochs: usize, initial: usize) -> History {
    let x = random::normal([120, 4], 1);
    let y = Tensor::new(
        [120],
        x.data().chunks(4).map(|r| f32::from(r[0] + r[1] > 0.0)).collect(),
    )
    .unwrap();
    let mut m = Sequential::new()
        .seed(2)
        .add(Dense::new(8).activation(Activation::Relu).input_dim(4))
        .add(Dense::new(1).activation(Activation::Sigmoid));
    m.compile(
        &CpuBackend,
        Optimizer::adam_lr(0.02),
        Loss::BinaryCrossentropy,
        &[Metric::Accuracy],
    )
    .unwrap();
    m.fit(
        &x,
        &y,
        &FitOptions::new(epochs, 16)
            .validation_split(0.25)
            .initial_epoch(initial),
    )
    .unwrap()
}

#[test]
fn the_plot_is_a_real_png_with_curves_on_it() {
    let h = trained(8, 0);
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("history.png");
    let _ = std::fs::remove_file(&path);
    h.plot(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 10_000, "only {} bytes", bytes.len());
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes)).read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).unwrap();
    // Two panels (loss, accuracy) side by side.
    assert_eq!((info.width, info.height), (960, 320));
    let rgb: Vec<&[u8]> = pixels.chunks(info.color_type.samples()).collect();
    let blue = rgb.iter().filter(|p| p[2] > 200 && p[0] < 60 && p[1] < 60).count();
    let red = rgb.iter().filter(|p| p[0] > 200 && p[1] < 60 && p[2] < 60).count();
    let dark = rgb.iter().filter(|p| p[0] < 80 && p[1] < 80 && p[2] < 80).count();
    assert!(
        blue > 500 && red > 500,
        "training {blue} and validation {red} curve pixels"
    );
    assert!(dark > 2_000, "{dark} pixels of text and axes");
}

#[test]
fn csv_has_a_row_per_epoch_numbered_from_the_first() {
    let h = trained(3, 2);
    let csv = h.to_csv();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "epoch,loss,accuracy,val_loss,val_accuracy");
    assert_eq!(lines.len(), 2, "only epoch 3 runs after initial_epoch 2");
    assert!(lines[1].starts_with("3,"));
    let loss: f32 = lines[1].split(',').nth(1).unwrap().parse().unwrap();
    assert_eq!(loss, h.last("loss").unwrap());
    let empty = History::default();
    assert!(empty.plot(std::env::temp_dir().join("never.png")).is_err());
}
