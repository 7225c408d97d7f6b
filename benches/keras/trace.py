"""Records a Keras training run that Kiln can replay step for step.

Keras and Kiln draw initial weights and shuffles from different generators, so their accuracies
over a few seeds are samples of two distributions. To compare the engines number for number, this
script trains a model with Keras and writes what Kiln needs to repeat the run exactly:

    init.safetensors  the initial weights under Kiln's names (`conv1d/kernel`, `lstm/bias`, ...)
                      and in Keras' element order (see `kiln_value`)
    order.npy         int64 [epochs, n]: the training rows of each epoch, in order; batches are
                      consecutive slices of `batch` rows, the last one ragged, as `fit` makes them
    losses.npy        float32 [steps]: each batch's loss, from `train_on_batch` (the loss of the
                      weights before that step, as `fit` reports it per batch); with `--batches N`
                      the first N batches only, and the replay stops there too
    losses_f64.npy    the same run (same start, same batches) computed by Keras in float64: the
                      float32 runs of Keras and Kiln both round; this one shows how far rounding
                      alone carries a run, and is the better reference for either
    final.safetensors, final_f64.safetensors
                      the weights after the last batch, of each run: the replay names the weights
                      that drifted most
    trace.json        the model, set, seed, epochs, batch, Keras' test accuracies (float32 and
                      float64), versions

`examples/keras_replay.rs` replays a trace and prints both loss curves and accuracies.

    pip install -r benches/keras/requirements.txt
    python benches/keras/trace.py fcn GunPoint --seed 0 --epochs 150 --out /tmp/fcn-gunpoint-0

Models (the dataset README's reference setups, Adam 1e-3, sparse categorical cross-entropy):
`fcn` (3 x Conv1D(64, 3, same) -> BatchNormalization -> ReLU, GlobalAveragePooling1D, Dense softmax),
`lstm` / `gru` (64 units -> Dense softmax), `transformer` (the README's encoder classifier with its
dropout rates at 0: dropout masks come from each engine's own generator and cannot be replayed),
and on the set `mnist`, `resnet` (examples/residual_cnn.rs, batch 32).
"""

import argparse
import gzip
import json
import os
import subprocess
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")
if os.environ.get("KILN_TRACE_FLOAT64"):
    import jax

    jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402
import keras  # noqa: E402
from keras import layers  # noqa: E402
from safetensors.numpy import load_file, save_file  # noqa: E402

if os.environ.get("KILN_TRACE_FLOAT64"):
    keras.config.set_floatx("float64")

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(os.path.dirname(os.path.dirname(HERE)), "crates", "kiln-data", "data")


def build(kind, shape, classes, momentum):  # noqa: C901 (one branch per model)
    inp = keras.Input(shape)
    if kind == "fcn":
        x = inp
        for _ in range(3):
            x = layers.Conv1D(64, 3, padding="same")(x)
            x = layers.BatchNormalization(momentum=momentum)(x)
            x = layers.ReLU()(x)
        x = layers.GlobalAveragePooling1D()(x)
    elif kind == "lstm":
        x = layers.LSTM(64)(inp)
    elif kind == "gru":
        x = layers.GRU(64)(inp)
    elif kind == "resnet":
        # examples/residual_cnn.rs: Conv2D(32) -> BN -> ReLU, a residual block of two such convs
        # (the second without ReLU) joined by Add -> ReLU, MaxPooling2D, Conv2D(64) -> BN -> ReLU,
        # GlobalAveragePooling2D.
        def conv_bn(x, filters, relu):
            x = layers.Conv2D(filters, 3, padding="same")(x)
            x = layers.BatchNormalization(momentum=momentum)(x)
            return layers.ReLU()(x) if relu else x

        h = conv_bn(inp, 32, True)
        r = conv_bn(conv_bn(h, 32, True), 32, False)
        h = layers.MaxPooling2D(2)(layers.ReLU()(layers.Add()([h, r])))
        x = layers.GlobalAveragePooling2D()(conv_bn(h, 64, True))
    elif kind == "transformer":
        # The dataset README's Transformer classifier without its dropout, which no replay can
        # repeat: MultiHeadAttention, LayerNormalization, 1x1 convolutions, the Add joins.
        h = layers.Dense(16)(inp)
        for _ in range(2):
            a = layers.MultiHeadAttention(num_heads=2, key_dim=16)(h, h)
            h = layers.LayerNormalization(epsilon=1e-6)(layers.Add()([h, a]))
            f = layers.Conv1D(8, 1, activation="relu")(h)
            f = layers.Conv1D(16, 1)(f)
            h = layers.LayerNormalization(epsilon=1e-6)(layers.Add()([h, f]))
        x = layers.GlobalAveragePooling1D()(h)
        x = layers.Dense(32, activation="relu")(x)
    else:
        raise SystemExit(f"unknown model {kind}: fcn, lstm, gru, transformer or resnet")
    return keras.Model(inp, layers.Dense(classes, activation="softmax")(x))


def kiln_name(variable):
    """Kiln's name of a Keras 3 variable. Keras' paths name a recurrent cell
    (`lstm/lstm_cell/kernel`) and a Bidirectional wrapper's inner layers
    (`bidirectional/forward_lstm/lstm_cell/kernel`); Kiln's layers own their weights
    (`lstm/kernel`, `bidirectional/forward_kernel`). Other paths are Kiln's names as they are
    (`multi_head_attention/query/kernel`, `batch_normalization/moving_mean`)."""
    parts = [p for p in variable.path.split("/") if not p.endswith("_cell")]
    if len(parts) == 3 and parts[1].startswith(("forward_", "backward_")):
        return f"{parts[0]}/{parts[1].split('_')[0]}_{parts[2]}"
    return "/".join(parts)


def kiln_value(variable):
    """Kiln keeps a convolution kernel as a matrix with Keras' element order: `[kh·kw·c, filters]`
    for Keras' `[kh, kw, c, filters]` (and Conv1D's `[k, c, filters]`), `[kh·kw, c·m]` for a
    depthwise kernel `[kh, kw, c, m]`, `[c, filters]` for a 1×1 pointwise one. Every other weight
    has Keras' shape."""
    value = np.ascontiguousarray(variable.numpy(), dtype=np.float32)
    layer, name = variable.path.split("/")[0], variable.path.split("/")[-1]
    if value.ndim < 3 or not (layer.startswith(("conv", "depthwise_conv", "separable_conv"))):
        return value
    depthwise = name == "depthwise_kernel" or layer.startswith("depthwise_conv")
    if depthwise:
        return value.reshape(value.shape[0] * value.shape[1], -1)
    return value.reshape(-1, value.shape[-1])


def dataset(name):
    """`(x_train, y_train, x_test, y_test)` as Kiln's `datasets` gives them: a UCR set, or `mnist`
    (the bundled 5,000-image sample: the first 80 % for training, pixels / 255, `[n, 28, 28, 1]`)."""
    if name == "mnist":

        def idx(file):
            with gzip.open(os.path.join(DATA, file)) as f:
                raw = f.read()
            dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(raw[3])]
            return np.frombuffer(raw, np.uint8, offset=4 + 4 * len(dims)).reshape(dims)

        images = idx("mnist5k-images-idx3-ubyte.gz").astype(np.float32) / 255.0
        images = images.reshape(-1, 28, 28, 1)
        labels = idx("mnist5k-labels-idx1-ubyte.gz").astype(np.int64)
        cut = len(labels) * 8 // 10
        return images[:cut], labels[:cut], images[cut:], labels[cut:]
    load = lambda part: np.load(os.path.join(DATA, "ucr", f"{name}_{part}.npy"))  # noqa: E731
    return load("train_x"), load("train_y"), load("test_x"), load("test_y")


def train(model, x, y, order, batch, batches):
    """`train_on_batch` over each epoch's rows in order, for `batches` batches at most; returns
    every batch's loss."""
    losses = []
    for rows in order:
        for start in range(0, len(rows), batch):
            if len(losses) == batches:
                break
            rows_of_batch = rows[start : start + batch]
            losses.append(float(model.train_on_batch(x[rows_of_batch], y[rows_of_batch])))
    return np.asarray(losses, dtype=np.float32)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model")
    p.add_argument("set")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=150)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--momentum", type=float, default=0.99)
    p.add_argument("--batches", type=int, default=-1, help="stop after this many batches")
    p.add_argument("--out", required=True)
    p.add_argument("--float64", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()

    x, y, x_test, y_test = dataset(a.set)
    keras.utils.set_random_seed(a.seed)
    model = build(a.model, x.shape[1:], int(y.max()) + 1, a.momentum)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    init_path, order_path = os.path.join(a.out, "init.safetensors"), os.path.join(a.out, "order.npy")
    if a.float64:
        # The float32 run's start and batches, trained in float64.
        init = load_file(init_path)
        for v in model.weights:
            v.assign(init[kiln_name(v)].reshape(v.shape))
        order = np.load(order_path)
    else:
        os.makedirs(a.out, exist_ok=True)
        save_file(
            {kiln_name(v): kiln_value(v) for v in model.weights},
            init_path,
            metadata={"kiln.format": "1"},  # a weights-only file in Kiln's format
        )
        rng = np.random.default_rng(a.seed)
        order = np.stack([rng.permutation(len(x)) for _ in range(a.epochs)]).astype(np.int64)
        np.save(order_path, order)
    losses = train(model, x, y, order, a.batch, a.batches)
    accuracy = float(np.mean(np.argmax(model.predict(x_test, verbose=0), axis=1) == y_test))
    suffix = "_f64" if a.float64 else ""
    np.save(os.path.join(a.out, f"losses{suffix}.npy"), losses)
    save_file(
        {kiln_name(v): kiln_value(v) for v in model.weights},
        os.path.join(a.out, f"final{suffix}.safetensors"),
        metadata={"kiln.format": "1"},
    )
    if a.float64:
        print(json.dumps({"test_accuracy_f64": accuracy}))
        return
    # The same run in float64 (a fresh process: JAX's 64-bit mode is global).
    child = subprocess.run(
        [sys.executable, __file__] + sys.argv[1:] + ["--float64"],
        check=True,
        capture_output=True,
        text=True,
        env=dict(os.environ, KILN_TRACE_FLOAT64="1"),
    )
    meta = {
        "model": a.model,
        "set": a.set,
        "seed": a.seed,
        "epochs": a.epochs,
        "batch": a.batch,
        "momentum": a.momentum,
        "test_accuracy": accuracy,
        **json.loads(child.stdout.strip().splitlines()[-1]),
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
    }
    with open(os.path.join(a.out, "trace.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(json.dumps(meta))


if __name__ == "__main__":
    main()
