//! The readers on the shipped files and on broken ones: every error names the file and what is
//! wrong with it.

use std::path::{Path, PathBuf};

use kiln_data::{parse_csv, parse_idx, parse_npy, read_idx, read_npy, train_test_split, Tensor};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

fn shipped(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data").join(name)
}

fn error_of(r: kiln_data::Result<impl std::fmt::Debug>) -> String {
    r.expect_err("expected an error").to_string()
}

#[test]
fn npy_files_written_by_numpy_read_back() {
    let t = read_npy(fixture("f32.npy")).unwrap();
    assert_eq!(t.shape(), [3, 4]);
    assert_eq!(t.data()[5], 1.25);
    let t = read_npy(fixture("f64.npy")).unwrap();
    assert_eq!(
        (t.shape(), t.data()),
        ([2usize, 2].as_slice(), [1.5, -2.25, 3.0, 1e-3].as_slice())
    );
    assert_eq!(read_npy(fixture("i64.npy")).unwrap().data(), [0.0, 1.0, 2.0, 9.0, 3.0]);
    let t = read_npy(fixture("u8.npy")).unwrap();
    assert_eq!((t.shape(), t.data()[23]), ([2usize, 3, 4].as_slice(), 23.0));
    assert_eq!(read_npy(fixture("big_endian_f32.npy")).unwrap().data(), [1.0, -2.5]);
    assert_eq!(read_npy(fixture("v2_f32.npy")).unwrap().data(), [1.0, 2.0, 3.0, 4.0]);
    assert_eq!(read_npy(fixture("scalar.npy")).unwrap().data(), [7.5]);
}

#[test]
fn bad_npy_files_are_refused_with_the_reason() {
    let e = error_of(read_npy(fixture("complex.npy")));
    assert!(
        e.contains("complex.npy") && e.contains("'<c16' is not supported"),
        "{e}"
    );
    let e = error_of(read_npy(fixture("fortran.npy")));
    assert!(e.contains("Fortran"), "{e}");
    let bytes = std::fs::read(fixture("f32.npy")).unwrap();
    let e = error_of(parse_npy("cut.npy", &bytes[..bytes.len() - 3]));
    assert!(
        e.contains("cut.npy") && e.contains("needs 48 data bytes but the file holds 45"),
        "{e}"
    );
    let e = error_of(parse_npy("short.npy", &bytes[..20]));
    assert!(e.contains("truncated header"), "{e}");
    let e = error_of(parse_npy("text.npy", b"just some text"));
    assert!(e.contains("not an .npy file"), "{e}");
    let e = error_of(read_npy(fixture("absent.npy")));
    assert!(e.contains("absent.npy"), "{e}");
}

#[test]
fn the_shipped_mnist_idx_files_read_and_broken_ones_do_not() {
    let images = read_idx(shipped("mnist5k-images-idx3-ubyte.gz")).unwrap();
    assert_eq!(images.shape(), [5000, 28, 28]);
    assert!(images.data().iter().all(|&v| (0.0..=255.0).contains(&v)));
    let labels = read_idx(shipped("mnist5k-labels-idx1-ubyte.gz")).unwrap();
    assert_eq!(labels.shape(), [5000]);

    // A plain (ungzipped) file: magic 0x00000803, dims 2×2×2, then 8 bytes.
    let mut plain = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2];
    plain.extend(1..=8u8);
    assert_eq!(parse_idx("ok.idx", &plain).unwrap().data()[7], 8.0);
    let e = error_of(parse_idx("cut.idx", &plain[..plain.len() - 1]));
    assert!(
        e.contains("cut.idx") && e.contains("need 8 data bytes but the file holds 7"),
        "{e}"
    );
    let mut wrong = plain.clone();
    wrong[0] = 0x50;
    let e = error_of(parse_idx("wrong.idx", &wrong));
    assert!(e.contains("wrong magic number"), "{e}");
    let e = error_of(parse_idx("header.idx", &plain[..10]));
    assert!(e.contains("truncated header"), "{e}");
    let gz = std::fs::read(shipped("mnist5k-labels-idx1-ubyte.gz")).unwrap();
    let e = error_of(parse_idx("cut.gz", &gz[..gz.len() / 2]));
    assert!(e.contains("cut.gz") && e.contains("gzip"), "{e}");
}

#[test]
fn csv_errors_give_line_and_column() {
    let ok = parse_csv("ok.csv", "a,b,label\n1,2,0\n3,4,1\n", "label").unwrap();
    assert_eq!(
        (ok.x.shape(), ok.y.data()),
        ([2usize, 2].as_slice(), [0.0, 1.0].as_slice())
    );
    let e = error_of(parse_csv("ragged.csv", "a,b,label\n1,2,0\n3,1\n", "label"));
    assert!(e.contains("ragged.csv:3") && e.contains("2 cells"), "{e}");
    let e = error_of(parse_csv("cells.csv", "a,b,label\n1,2,0\n3,x7,1\n", "label"));
    assert!(e.contains("cells.csv:3") && e.contains("x7"), "{e}");
    let e = error_of(parse_csv("nolabel.csv", "a,b\n1,2\n", "label"));
    assert!(e.contains("no column named `label`"), "{e}");
}

#[test]
fn train_test_split_is_seeded_and_keeps_rows_together() {
    let x = Tensor::new([10, 2], (0..20).map(|v| v as f32).collect()).unwrap();
    let y = Tensor::new([10], (0..10).map(|v| v as f32).collect()).unwrap();
    let (xtr, xte, ytr, yte) = train_test_split(&x, &y, 0.25, 7).unwrap();
    assert_eq!((xtr.rows(), xte.rows()), (7, 3), "ceil(0.25 × 10) = 3 test samples");
    for (xs, ys) in [(&xtr, &ytr), (&xte, &yte)] {
        for i in 0..ys.rows() {
            assert_eq!(xs.row(i)[0], 2.0 * ys.row(i)[0], "row {i} lost its label");
        }
    }
    let mut all: Vec<f32> = ytr.data().iter().chain(yte.data()).copied().collect();
    all.sort_by(f32::total_cmp);
    assert_eq!(all, y.data());
    assert_eq!(train_test_split(&x, &y, 0.25, 7).unwrap().3, yte);
    assert_ne!(train_test_split(&x, &y, 0.25, 8).unwrap().3, yte);
    assert!(train_test_split(&x, &y, 1.0, 7).is_err());
    assert!(train_test_split(&x, &y.slice_rows(0..9), 0.5, 7).is_err());
}

#[cfg(feature = "ndarray")]
#[test]
fn ndarray_arrays_convert_both_ways_in_logical_order() {
    use ndarray::{array, Array2, ArrayD};
    let a: Array2<f64> = array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]];
    // A transposed view is column-major in memory; the tensor still reads it row by row.
    let t = Tensor::try_from(&a.t()).unwrap();
    assert_eq!(
        (t.shape(), t.data()),
        ([3usize, 2].as_slice(), [1.0, 4.0, 2.0, 5.0, 3.0, 6.0].as_slice())
    );
    let bytes = ndarray::Array1::<u8>::from(vec![0, 7, 255]);
    assert_eq!(Tensor::try_from(&bytes).unwrap().data(), [0.0, 7.0, 255.0]);
    let back: ArrayD<f32> = t.to_ndarray();
    assert_eq!(back.shape(), [3, 2]);
    assert_eq!(back[[2, 1]], 6.0);
    assert_eq!(
        Tensor::try_from(&ndarray::Array2::<f32>::zeros((0, 3)))
            .unwrap()
            .shape(),
        [0, 3]
    );
}

/// A gzip IDX stream inflates no further than its header declares: a 2×2 image followed by 64 MiB
/// of zeros (a few tens of KiB compressed) is refused after reading five body bytes, not 64 MiB.
#[test]
fn a_gzip_idx_bomb_is_refused_without_inflating_it() {
    use std::io::Write;
    let mut plain = vec![0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 2];
    plain.resize(plain.len() + (64 << 20), 0);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&plain).unwrap();
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 1 << 20, "{} compressed bytes", bomb.len());
    let e = error_of(parse_idx("bomb.idx.gz", &bomb));
    assert!(e.contains("need 4 data bytes but the file holds 5"), "{e}");
}
