//! The digits MLP trained data-parallel across the processes of an MPI job: each rank trains on
//! its own part of the data, every step averages the gradients over all of them, rank 0 prints
//! the progress and writes the model.
//!
//! ```text
//! cargo build --release --features mpi --example mpi_digits
//! mpirun -np 2 target/release/examples/mpi_digits       # add --oversubscribe on a 2-core machine
//! ```
//!
//! Each rank computes on `KILN_DEVICE`'s choice (`Device::auto`); `KILN_EPOCHS=n` sets the epochs.

use std::sync::Arc;

use kiln::mpi::Mpi;
use kiln::prelude::*;

fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let mpi = Mpi::init()?;
    let (rank, size) = (mpi.rank(), mpi.size());
    let epochs = std::env::var("KILN_EPOCHS")
        .ok()
        .and_then(|e| e.parse().ok())
        .unwrap_or(30);
    let data = datasets::digits()?;
    let scale = |t: &Tensor| {
        let mut t = t.clone();
        t.data_mut().iter_mut().for_each(|v| *v /= 16.0);
        t
    };
    // This rank's part of the training and test sets.
    let part = |t: &Tensor| rank_shard(t, rank, size);
    let (x, y) = (part(&scale(&data.x_train))?, part(&data.y_train)?);
    let (x_test, y_test) = (part(&scale(&data.x_test))?, part(&data.y_test)?);

    let devices = DataParallel::new(vec![Arc::new(Device::auto()?)])?.across_processes(mpi.clone());
    let mut model = Sequential::new()
        .add(Dense::new(64).activation(Activation::Relu).input_dim(64))
        .add(Dense::new(10).activation(Activation::Softmax));
    model.compile(
        &devices,
        Optimizer::adam(),
        Loss::SparseCategoricalCrossentropy,
        &[Metric::Accuracy],
    )?;
    // A global batch of 32, split over the ranks.
    let verbose = if rank == 0 { 1 } else { 0 };
    model.fit(&x, &y, &FitOptions::new(epochs, (32 / size).max(1)).verbose(verbose))?;
    // Every rank evaluates its part; the figures are over the whole test set's parts.
    let result = model.evaluate(&x_test, &y_test, 128)?;
    if rank == 0 {
        std::fs::create_dir_all("target/mpi_digits")?;
        model.save("target/mpi_digits/model.safetensors")?;
        println!(
            "{size} ranks: test accuracy {:.4} (loss {:.4})",
            result.get("accuracy").unwrap_or(0.0),
            result.loss()
        );
    }
    Ok(())
}
