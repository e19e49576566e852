# The Fashion-MNIST convolutional network lesson: the model of Udacity's "Intro to TensorFlow
# for Deep Learning", lesson 4 (l04c01, image classification with CNNs): two 3x3 convolutions
# of 32 and 64 filters with "same" padding and ReLU, each followed by 2x2 max pooling, then
# Flatten, Dense(128, relu) and Dense(10, softmax); Adam, batches of 32, 10 epochs.  The data
# come from tf.keras' own loader (the course reads them through tensorflow_datasets, which is
# not part of TensorFlow).  The one change: the first import.
#
#     python examples/lessons/cnn.py
#
import fastnn as tf                       # was: import tensorflow as tf

import numpy as np

fashion_mnist = tf.keras.datasets.fashion_mnist
(train_images, train_labels), (test_images, test_labels) = fashion_mnist.load_data()

class_names = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat',
               'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot']

num_train_examples = len(train_images)
num_test_examples = len(test_images)
print("Number of training examples: {}".format(num_train_examples))
print("Number of test examples:     {}".format(num_test_examples))

# the pixels from [0, 255] to [0, 1], and one channel per image: (n, 28, 28, 1)
train_images = train_images.reshape(-1, 28, 28, 1) / 255.0
test_images = test_images.reshape(-1, 28, 28, 1) / 255.0

model = tf.keras.Sequential([
    tf.keras.layers.Conv2D(32, (3,3), padding='same', activation='relu',
                           input_shape=(28, 28, 1)),
    tf.keras.layers.MaxPooling2D((2, 2), strides=2),
    tf.keras.layers.Conv2D(64, (3,3), padding='same', activation='relu'),
    tf.keras.layers.MaxPooling2D((2, 2), strides=2),
    tf.keras.layers.Flatten(),
    tf.keras.layers.Dense(128, activation='relu'),
    tf.keras.layers.Dense(10, activation='softmax')
])

model.compile(optimizer='adam',
              loss=tf.keras.losses.SparseCategoricalCrossentropy(),
              metrics=['accuracy'])

model.summary()

BATCH_SIZE = 32
history = model.fit(train_images, train_labels, batch_size=BATCH_SIZE, epochs=10)

test_loss, test_accuracy = model.evaluate(test_images, test_labels)
print('Accuracy on test dataset:', test_accuracy)

predictions = model.predict(test_images[:32])
print(predictions.shape)
print(predictions[0])
print(np.argmax(predictions[0]), class_names[np.argmax(predictions[0])])
print(test_labels[0], class_names[test_labels[0]])
