"""Writes tests/data/keras/layers/: Keras' outputs for fixed inputs and weights of the layers that
resize samples (Conv2DTranspose, Conv1DTranspose, UpSampling, ZeroPadding, Cropping, RepeatVector,
Permute; `tests/resizing.rs`), of Normalization (`tests/normalization.rs`), of Attention
(`tests/dot_attention.rs`) and of PReLU (`tests/activations.rs`), which the tests compare Kiln's
with (kernels in Keras' element order: Kiln's `[k·filters, channels]` byte for byte).

    KERAS_BACKEND=jax python benches/keras/layer_fixtures.py
"""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np  # noqa: E402
import keras  # noqa: E402
from keras import layers  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data", "keras", "layers")


def save(name, **arrays):
    for key, value in arrays.items():
        np.save(os.path.join(OUT, f"{name}_{key}.npy"), np.asarray(value, dtype=np.float32))


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(7)
    image = rng.standard_normal((2, 3, 4, 3)).astype(np.float32)
    sequence = rng.standard_normal((2, 5, 3)).astype(np.float32)
    cases = {
        "conv2d_same": (layers.Conv2DTranspose(5, 3, strides=2, padding="same", activation="relu"), image),
        "conv2d_valid": (layers.Conv2DTranspose(4, (2, 3), strides=(3, 2), padding="valid"), image),
        "conv1d_same": (layers.Conv1DTranspose(4, 3, strides=2, padding="same"), sequence),
        "conv1d_valid": (layers.Conv1DTranspose(2, 4, strides=3, padding="valid"), sequence),
    }
    for name, (layer, x) in cases.items():
        layer.build(x.shape)
        kernel = rng.standard_normal(layer.kernel.shape).astype(np.float32) * 0.5
        bias = rng.standard_normal(layer.bias.shape).astype(np.float32)
        layer.set_weights([kernel, bias])
        save(name, x=x, kernel=kernel, bias=bias, y=layer(x))
    save("up2d", x=image, y=layers.UpSampling2D((2, 3))(image))
    save("up1d", x=sequence, y=layers.UpSampling1D(3)(sequence))
    save("zero_padding2d", x=image, y=layers.ZeroPadding2D(((1, 2), (0, 3)))(image))
    save("zero_padding1d", x=sequence, y=layers.ZeroPadding1D((2, 1))(sequence))
    save("cropping2d", x=image, y=layers.Cropping2D(((1, 0), (1, 2)))(image))
    save("cropping1d", x=sequence, y=layers.Cropping1D((1, 2))(sequence))
    vectors = sequence[:, 0, :]
    save("repeat_vector", x=vectors, y=layers.RepeatVector(3)(vectors))
    save("permute", x=image, y=layers.Permute((3, 1, 2))(image))
    data = (rng.standard_normal((20, 4, 3)) * [1.0, 30.0, 0.01] + [0.0, -200.0, 5.0]).astype(np.float32)
    norm = layers.Normalization()
    norm.adapt(data)
    save("normalization", data=data, x=image[:, 0], y=norm(image[:, 0]), mean=norm.mean, variance=norm.variance)
    q = rng.standard_normal((2, 4, 3)).astype(np.float32)
    v = rng.standard_normal((2, 5, 2)).astype(np.float32)
    k = rng.standard_normal((2, 5, 3)).astype(np.float32)
    save("attention_dot", q=q, v=v, k=k, y=layers.Attention()([q, v, k]))
    q = rng.standard_normal((2, 5, 3)).astype(np.float32)
    v = rng.standard_normal((2, 5, 3)).astype(np.float32)
    scaled = layers.Attention(use_scale=True)
    scaled.build([q.shape, v.shape])
    scaled.set_weights([np.array(0.7, dtype=np.float32)])
    save("attention_scaled_causal", q=q, v=v, y=scaled([q, v], use_causal_mask=True), scale=[0.7])
    for name, x, shared in [
        ("prelu_vector", sequence[:, 0, :], None),
        ("prelu_channels", image, [1, 2]),
        ("prelu_one", image, [1, 2, 3]),
    ]:
        prelu = layers.PReLU(shared_axes=shared)
        prelu.build(x.shape)
        alpha = rng.standard_normal(prelu.alpha.shape).astype(np.float32)
        prelu.set_weights([alpha])
        save(name, x=x, alpha=alpha, y=prelu(x))
    print(f"keras {keras.__version__} ({keras.backend.backend()}): wrote {OUT}")


if __name__ == "__main__":
    main()
