"""Reruns the dataset README's Keras reference table: each model trained with Keras' own
generator (`keras.utils.set_random_seed(seed)`), `fit(shuffle=True)`, and its test accuracy
printed per seed. The README's figures were taken on the torch backend:

    pip install -r benches/keras/requirements.txt torch
    KERAS_BACKEND=torch python benches/keras/reference.py lstm BasicMotions 100 0,1,2

Models: `fcn`, `lstm`, `gru` (as in trace.py) and `transformer` (the README's encoder classifier
with its dropout, 0.1 in attention and after it); `THREADS=n` sets torch's thread count.
"""

import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "torch")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import keras  # noqa: E402
from keras import layers  # noqa: E402

import trace as recorded  # noqa: E402

UCR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "crates", "kiln-data", "data", "ucr")


def transformer(shape, classes):
    inp = keras.Input(shape)
    h = layers.Dense(16)(inp)
    for _ in range(2):
        a = layers.MultiHeadAttention(num_heads=2, key_dim=16, dropout=0.1)(h, h)
        a = layers.Dropout(0.1)(a)
        h = layers.LayerNormalization(epsilon=1e-6)(layers.Add()([h, a]))
        f = layers.Conv1D(8, 1, activation="relu")(h)
        f = layers.Conv1D(16, 1)(f)
        h = layers.LayerNormalization(epsilon=1e-6)(layers.Add()([h, f]))
    x = layers.GlobalAveragePooling1D()(h)
    x = layers.Dense(32, activation="relu")(x)
    return keras.Model(inp, layers.Dense(classes, activation="softmax")(x))


def main():
    kind, name, epochs, seeds = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    if os.environ.get("THREADS") and keras.backend.backend() == "torch":
        import torch

        torch.set_num_threads(int(os.environ["THREADS"]))
    load = lambda part: np.load(os.path.join(UCR, f"{name}_{part}.npy"))  # noqa: E731
    x_train, y_train, x_test, y_test = load("train_x"), load("train_y"), load("test_x"), load("test_y")
    classes = int(y_train.max()) + 1
    accuracies = []
    for seed in (int(s) for s in seeds.split(",")):
        start = time.time()
        keras.utils.set_random_seed(seed)
        if kind == "transformer":
            model = transformer(x_train.shape[1:], classes)
        else:
            model = recorded.build(kind, x_train.shape[1:], classes, 0.99)
        model.compile(
            optimizer=keras.optimizers.Adam(1e-3),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        model.fit(x_train, y_train, batch_size=16, epochs=epochs, shuffle=True, verbose=0)
        accuracies.append(model.evaluate(x_test, y_test, verbose=0)[1])
        print(f"{kind} {name} seed {seed}: {accuracies[-1]:.4f} ({time.time() - start:.0f} s)", flush=True)
    print(f"mean {np.mean(accuracies):.3f} ({keras.backend.backend()})")


if __name__ == "__main__":
    main()
