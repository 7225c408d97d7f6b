//! Data parallelism across processes over MPI (feature `mpi`; `.ci/run` runs this with Open MPI):
//! two ranks started by `mpirun -np 2` on loopback train the digits MLP to the accuracy one process
//! reaches with the same global batches, rank 0 writes the checkpoint; and a rank killed mid-run
//! makes the job end with an error within a bounded time instead of hanging.
//!
//! The ranks are this test binary itself, run under `mpirun` with the ignored test `rank` and
//! `KILN_MPI_ROLE` saying what to do.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kiln::graph::Backend;
use kiln::mpi::Mpi;
use kiln::prelude::*;

const EPOCHS: usize = 8;
/// The global batch: each of the two ranks trains on half of it.
const BATCH: usize = 32;

/// The digits, scaled to [0, 1]; the training set cut to an even count so two ranks share it
/// exactly.
fn digits() -> (Tensor, Tensor, Tensor, Tensor) {
    let data = datasets::digits().unwrap();
    let scale = |t: &Tensor| {
        let mut t = t.clone();
        t.data_mut().iter_mut().for_each(|v| *v /= 16.0);
        t
    };
    let even: Vec<usize> = (0..data.x_train.rows() / 2 * 2).collect();
    (
        scale(&data.x_train).select_rows(&even),
        data.y_train.select_rows(&even),
        scale(&data.x_test),
        data.y_test,
    )
}

fn mlp(device: &dyn Backend) -> Sequential {
    let mut m = Sequential::new()
        .seed(3)
        .add(Dense::new(64).activation(Activation::Relu).input_dim(64))
        .add(Dense::new(10).activation(Activation::Softmax));
    m.compile(
        device,
        Optimizer::adam(),
        Loss::SparseCategoricalCrossentropy,
        &[Metric::Accuracy],
    )
    .unwrap();
    m
}

/// A rank of a job `mpirun` started (see the module doc); does nothing when run directly.
#[test]
#[ignore = "a rank of the MPI jobs the other tests start"]
fn rank() {
    let Ok(role) = std::env::var("KILN_MPI_ROLE") else {
        return;
    };
    let mpi = Mpi::init().unwrap();
    let (rank, size) = (mpi.rank(), mpi.size());
    let (x, y, x_test, y_test) = digits();
    // Rank r trains on every size-th sample from r on: with no shuffling, global batch b of the
    // job holds exactly the samples of batch b of one process with the whole batch.
    let shard = |t: &Tensor| rank_shard(t, rank, size).unwrap();
    let devices = DataParallel::new(vec![Arc::new(Device::cpu_threads(1).unwrap())])
        .unwrap()
        .across_processes(mpi.clone());
    let mut model = mlp(&devices);
    let options = FitOptions::new(EPOCHS, BATCH / size).no_shuffle();
    if role == "uneven" {
        // Rank 1 with a batch fewer: fit refuses on both ranks before the first step.
        let rows: Vec<usize> = (0..shard(&x).rows() - (rank * BATCH / size)).collect();
        let (xs, ys) = (shard(&x).select_rows(&rows), shard(&y).select_rows(&rows));
        let err = model.fit(&xs, &ys, &options).unwrap_err();
        eprintln!("kiln-mpi refused: {err}");
        return;
    }
    if role != "train" {
        model
            .fit(&shard(&x), &shard(&y), &FitOptions::new(2, BATCH / size))
            .unwrap();
        if rank == 1 {
            if role == "die" {
                let me = std::process::id().to_string();
                let _ = Command::new("kill").args(["-KILL", &me]).status();
            }
            // "stall": alive but silent, which mpirun cannot notice; rank 0's deadline must.
            std::thread::sleep(Duration::from_secs(600));
        }
    }
    model.fit(&shard(&x), &shard(&y), &options).unwrap();
    // Each rank evaluates its part of the test set; the figures are over all of it.
    let e = model
        .evaluate(
            &shard_of_all(&x_test, rank, size),
            &shard_of_all(&y_test, rank, size),
            64,
        )
        .unwrap();
    if rank == 0 {
        let path = std::env::var("KILN_MPI_CHECKPOINT").unwrap();
        model.save(&path).unwrap();
        println!("kiln-mpi accuracy={} loss={}", e.get("accuracy").unwrap(), e.loss());
    }
}

/// Rank `rank`'s part of a set, every sample of it in some rank's part (the test set is not cut).
fn shard_of_all(t: &Tensor, rank: usize, size: usize) -> Tensor {
    let rows: Vec<usize> = (rank..t.rows()).step_by(size).collect();
    t.select_rows(&rows)
}

/// Runs `mpirun -np 2` over this binary's `rank` test with `role`; returns the exit success,
/// stdout and stderr, and how long it took.
fn mpirun(role: &str, checkpoint: &std::path::Path) -> (bool, String, String, Duration) {
    let start = Instant::now();
    let out = Command::new("mpirun")
        .args(["-np", "2", "--oversubscribe", "--allow-run-as-root"])
        // Loopback TCP between the ranks: no shared-memory transport, which containers restrict.
        .args(["--mca", "btl", "self,tcp"])
        .arg(std::env::current_exe().unwrap())
        .args(["rank", "--exact", "--ignored", "--nocapture", "--test-threads", "1"])
        .env("KILN_MPI_ROLE", role)
        .env("KILN_MPI_CHECKPOINT", checkpoint)
        .env("KILN_MPI_TIMEOUT", "5")
        .stdin(Stdio::null())
        .output()
        .expect("mpirun runs (apt-get install openmpi-bin)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        start.elapsed(),
    )
}

fn figure(stdout: &str, name: &str) -> f32 {
    // The line may follow the test harness's `test rank ... ` on the same line.
    let line = stdout
        .lines()
        .find_map(|l| l.split("kiln-mpi ").nth(1))
        .unwrap_or_else(|| panic!("no result line in {stdout}"));
    let field = line
        .split_whitespace()
        .find_map(|f| f.strip_prefix(&format!("{name}=")))
        .unwrap();
    field.parse().unwrap()
}

#[test]
fn two_ranks_train_the_digits_mlp_as_one_process_does() {
    let dir = std::env::temp_dir().join(format!("kiln-mpi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let checkpoint = dir.join("model.safetensors");
    let (ok, stdout, stderr, _) = mpirun("train", &checkpoint);
    assert!(ok, "mpirun failed:\n{stdout}\n{stderr}");

    let (x, y, x_test, y_test) = digits();
    let mut one = mlp(&kiln::cpu::CpuBackend);
    one.fit(&x, &y, &FitOptions::new(EPOCHS, BATCH).no_shuffle()).unwrap();
    let e = one.evaluate(&x_test, &y_test, 64).unwrap();
    let (accuracy, loss) = (figure(&stdout, "accuracy"), figure(&stdout, "loss"));
    eprintln!(
        "two ranks: accuracy {accuracy}, loss {loss}; one process: {:?}",
        e.values
    );
    assert!(e.get("accuracy").unwrap() > 0.9, "{:?}", e.values);
    assert!(
        (accuracy - e.get("accuracy").unwrap()).abs() <= 1.0 / 360.0 + 1e-6,
        "two ranks {accuracy}, one process {:?}",
        e.values
    );
    assert!(
        (loss - e.loss()).abs() <= 1e-3 * e.loss(),
        "two ranks loss {loss}, one process {}",
        e.loss()
    );
    // Rank 0's checkpoint holds the trained model.
    let mut loaded = load_model(&checkpoint, &kiln::cpu::CpuBackend).unwrap();
    let again = loaded.evaluate(&x_test, &y_test, 64).unwrap();
    assert!((again.loss() - loss).abs() <= 1e-4 * loss, "{} vs {loss}", again.loss());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_killed_or_stalled_rank_ends_the_job_with_an_error_not_a_hang() {
    let dir = std::env::temp_dir().join(format!("kiln-mpi-die-{}", std::process::id()));
    for role in ["die", "stall"] {
        let (ok, stdout, stderr, took) = mpirun(role, &dir.join("model.safetensors"));
        assert!(!ok, "{role}: the job succeeded without rank 1:\n{stdout}\n{stderr}");
        assert!(!stdout.contains("kiln-mpi accuracy"), "{role}: {stdout}");
        // A killed rank: mpirun ends the job. A stalled one: rank 0's all-reduce gives up after
        // its 5 s deadline and aborts the job.
        assert!(took < Duration::from_secs(60), "{role}: took {took:?}:\n{stderr}");
        if role == "stall" {
            assert!(stderr.contains("aborting the job"), "{stderr}");
        }
        eprintln!("{role}: the job ended in {took:?}");
    }
}

#[test]
fn ranks_with_different_step_counts_are_refused_on_every_rank() {
    let dir = std::env::temp_dir().join(format!("kiln-mpi-uneven-{}", std::process::id()));
    let (ok, stdout, stderr, took) = mpirun("uneven", &dir.join("model.safetensors"));
    assert!(ok, "{stdout}\n{stderr}");
    // Both ranks got the error (each prints it), naming both counts.
    let refusals = stderr.matches("kiln-mpi refused").count() + stdout.matches("kiln-mpi refused").count();
    assert_eq!(refusals, 2, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("[45, 44]") || stdout.contains("[45, 44]"),
        "{stdout}\n{stderr}"
    );
    assert!(took < Duration::from_secs(60));
}
