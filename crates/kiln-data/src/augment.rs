//! Data augmentation for images: shifted copies, the cheapest way to stretch a small training set.

use crate::{Error, Result};

use crate::{random, Tensor};

/// `x` (NHWC images) followed by `copies` shifted copies of every image, each moved by a random
/// offset of up to `max_shift` pixels along each axis (zeros shifted in), with the labels `y`
/// repeated to match. Seeded, so the same call gives the same data.
pub fn shifted_copies(x: &Tensor, y: &Tensor, copies: usize, max_shift: usize, seed: u64) -> Result<(Tensor, Tensor)> {
    let &[n, h, w, c] = x.shape() else {
        return Err(Error::Data(format!(
            "shifted_copies: images must be [n, height, width, channels], got {:?}",
            x.shape()
        )));
    };
    if y.rows() != n {
        return Err(Error::Data(format!(
            "shifted_copies: {n} images but {} labels",
            y.rows()
        )));
    }
    let m = max_shift as i32;
    let offsets = random::integers(-m, m + 1, [n * copies, 2], seed);
    let mut xs = Vec::with_capacity(x.data().len() * (copies + 1));
    let mut ys = Vec::with_capacity(y.data().len() * (copies + 1));
    xs.extend_from_slice(x.data());
    ys.extend_from_slice(y.data());
    let (h, w) = (h as i64, w as i64);
    for k in 0..n * copies {
        let (i, o) = (k % n, offsets.row(k));
        let (dy, dx) = (o[0] as i64, o[1] as i64);
        let image = x.row(i);
        for r in 0..h {
            for col in 0..w {
                let (sr, sc) = (r - dy, col - dx);
                if (0..h).contains(&sr) && (0..w).contains(&sc) {
                    let at = ((sr * w + sc) as usize) * c;
                    xs.extend_from_slice(&image[at..at + c]);
                } else {
                    xs.extend(std::iter::repeat_n(0.0, c));
                }
            }
        }
        ys.extend_from_slice(y.row(i));
    }
    let mut x_shape = x.shape().to_vec();
    x_shape[0] = n * (copies + 1);
    let mut y_shape = y.shape().to_vec();
    y_shape[0] = n * (copies + 1);
    Ok((Tensor::new(x_shape, xs)?, Tensor::new(y_shape, ys)?))
}
