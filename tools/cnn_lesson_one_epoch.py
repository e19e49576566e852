"""One epoch of the CNN lesson's model (examples/lessons/cnn.py) on the first 6,000
Fashion-MNIST training images, then the test accuracy on all 10,000: a short stand-in for the
lesson's 10 epochs on 60,000 images.

    python tools/cnn_lesson_one_epoch.py
"""
import time

import numpy as np

import fastnn as tf

(x, y), (xt, yt) = tf.keras.datasets.fashion_mnist.load_data()
x = x[:6000].reshape(-1, 28, 28, 1) / 255.0
y = y[:6000]
xt = xt.reshape(-1, 28, 28, 1) / 255.0
np.random.seed(0)
model = tf.keras.Sequential([
    tf.keras.layers.Conv2D(32, (3, 3), padding='same', activation='relu',
                           input_shape=(28, 28, 1)),
    tf.keras.layers.MaxPooling2D((2, 2), strides=2),
    tf.keras.layers.Conv2D(64, (3, 3), padding='same', activation='relu'),
    tf.keras.layers.MaxPooling2D((2, 2), strides=2),
    tf.keras.layers.Flatten(),
    tf.keras.layers.Dense(128, activation='relu'),
    tf.keras.layers.Dense(10, activation='softmax')])
model.compile(optimizer='adam', loss=tf.keras.losses.SparseCategoricalCrossentropy(),
              metrics=['accuracy'])
t = time.perf_counter()
h = model.fit(x, y, batch_size=32, epochs=1)
t1 = time.perf_counter() - t
t = time.perf_counter()
loss, acc = model.evaluate(xt, yt, verbose=0)
t2 = time.perf_counter() - t
print(f"fit 1 epoch on 6,000 images: {t1:.2f} s; train acc {h.history['accuracy'][-1]:.4f}; "
      f"test (10,000) loss {loss:.4f} acc {acc:.4f} in {t2:.2f} s; threads {tf.get_num_threads()}")
