//! The datasets bundled with Kiln (see `data/README.md` for sources and licences), split as their
//! export documents: the first 80% of rows train, the rest test.

use crate::Result;

use crate::csv::parse_csv;
use crate::idx::parse_idx;
use crate::npy::parse_npy;
use crate::Tensor;

/// A train/test split of one dataset.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub name: &'static str,
    pub feature_names: Vec<String>,
    pub x_train: Tensor,
    pub y_train: Tensor,
    pub x_test: Tensor,
    pub y_test: Tensor,
}

fn split(name: &'static str, text: &str, label: &str) -> Result<Dataset> {
    let t = parse_csv(name, text, label)?;
    let n = t.y.rows();
    let cut = n * 8 / 10;
    Ok(Dataset {
        name,
        feature_names: t.columns,
        x_train: t.x.slice_rows(0..cut),
        y_train: t.y.slice_rows(0..cut),
        x_test: t.x.slice_rows(cut..n),
        y_test: t.y.slice_rows(cut..n),
    })
}

/// 8×8 handwritten digits (1797 samples, 64 features 0..16, labels 0..9).
pub fn digits() -> Result<Dataset> {
    split("digits.csv", include_str!("../data/digits.csv"), "label")
}

/// Breast cancer Wisconsin diagnostic (569 samples, 30 features, labels 0 malignant / 1 benign).
pub fn breast_cancer() -> Result<Dataset> {
    split("breast_cancer.csv", include_str!("../data/breast_cancer.csv"), "label")
}

/// Fisher's iris (150 samples, 4 features, labels 0..2).
pub fn iris() -> Result<Dataset> {
    split("iris.csv", include_str!("../data/iris.csv"), "label")
}

/// Diabetes progression (442 samples, 10 unscaled features, regression target 25..346).
pub fn diabetes() -> Result<Dataset> {
    split("diabetes.csv", include_str!("../data/diabetes.csv"), "target")
}

/// The MNIST-5k subset: 5000 28×28 digits (pixels 0..255 as f32, shape `[N, 28, 28]`), labels 0..9;
/// the first 4000 train, the last 1000 test.
pub fn mnist() -> Result<Dataset> {
    let images = parse_idx(
        "mnist5k-images-idx3-ubyte.gz",
        include_bytes!("../data/mnist5k-images-idx3-ubyte.gz"),
    )?;
    let labels = parse_idx(
        "mnist5k-labels-idx1-ubyte.gz",
        include_bytes!("../data/mnist5k-labels-idx1-ubyte.gz"),
    )?;
    let n = labels.rows();
    let cut = n * 8 / 10;
    Ok(Dataset {
        name: "mnist5k",
        feature_names: Vec::new(),
        x_train: images.slice_rows(0..cut),
        y_train: labels.slice_rows(0..cut),
        x_test: images.slice_rows(cut..n),
        y_test: labels.slice_rows(cut..n),
    })
}

/// A time-series set of the UCR/UEA archive, with the archive's own train/test split (see
/// `data/ucr/README.md`): `x` `[N, steps, channels]` (channels-last, as Conv1D takes it), `y`
/// class indices. `name` is one of [`UCR_SETS`].
pub fn ucr(name: &str) -> Result<Dataset> {
    macro_rules! set {
        ($name:literal) => {
            (
                $name,
                [
                    include_bytes!(concat!("../data/ucr/", $name, "_train_x.npy")).as_slice(),
                    include_bytes!(concat!("../data/ucr/", $name, "_train_y.npy")).as_slice(),
                    include_bytes!(concat!("../data/ucr/", $name, "_test_x.npy")).as_slice(),
                    include_bytes!(concat!("../data/ucr/", $name, "_test_y.npy")).as_slice(),
                ],
            )
        };
    }
    let sets = [set!("GunPoint"), set!("ItalyPowerDemand"), set!("BasicMotions")];
    let Some((name, [xtr, ytr, xte, yte])) = sets.into_iter().find(|(n, _)| *n == name) else {
        return Err(crate::Error::InvalidArgument {
            context: "datasets::ucr".into(),
            message: format!("no bundled set `{name}`; there are {UCR_SETS:?}"),
        });
    };
    Ok(Dataset {
        name,
        feature_names: Vec::new(),
        x_train: parse_npy(name, xtr)?,
        y_train: parse_npy(name, ytr)?,
        x_test: parse_npy(name, xte)?,
        y_test: parse_npy(name, yte)?,
    })
}

/// The bundled UCR/UEA sets: GunPoint (150 steps, 1 channel, 2 classes), ItalyPowerDemand (24, 1,
/// 2) and BasicMotions (100, 6, 4).
pub const UCR_SETS: [&str; 3] = ["GunPoint", "ItalyPowerDemand", "BasicMotions"];
