"""Seed 002: a perceptron trained by the delta rule, in numpy.

Its code cells as written: only the imports changed (keras -> microgradnet, the original line
kept as a comment), and IPython magics, which are not Python, commented out (README.md lists
every such line). `python run.py seed_002.py` runs the cells as the notebook would.
"""

# %% In [1]
import numpy as np

def sigmoid(input):
    return 1 / (1 + np.exp(-input))
    
X_train = np.array([[0,0,1], 
                    [1,1,1],
                    [1,0,1],
                    [0,1,1]])

y_train = np.array([[0,1,1,0]]).T
np.random.seed(1)
weights_for_synapses = 2 * np.random.random((3, 1)) - 1 

print("Weights of synapses")
print(weights_for_synapses)

# training loop
for iteration in range(1):
    predictions = sigmoid(np.dot(X_train, weights_for_synapses))


# %% In [11]
print(predictions) # Expected: [0,1,1,0]


# %% In [2]
# First let's create the function that calculate the derivative of the sigmoid function
# ... we will learn more on how to take derivatives what they represent in the lecture on math
def sigm_derivative(x):
    return x * (1 - x)


# %% In [6]
# training loop
for iteration in range(2):
    predictions = sigmoid(np.dot(X_train, weights_for_synapses)) # calculate the prediction (forward propagation) 
    error = y_train - predictions # calculate the error
    adjustments = error * sigm_derivative(predictions) # backprop1 
    
#     print(predictions, end="\n\n")
#     print(sigm_derivative(predictions), end="\n\n")
#     print(weights_for_synapses, end="\n\n")
#     weights_for_synapses += np.dot(X_train.T, adjustments) # backprop2 - adjustment
    weights_for_synapses += np.dot(X_train.T, adjustments) # backprop2
#     print(weights_for_synapses, end="\n\n")


# %% In [14]
print("Weights of synapses")
print(weights_for_synapses)


# %% In [15]
print(predictions) # [0,1,1,0]


# %% In [9]
# training loop
for iteration in range(10000):
    predictions = sigmoid(np.dot(X_train, weights_for_synapses)) 
    error = y_train - predictions
    adjustments = error * sigm_derivative(predictions)
    weights_for_synapses += np.dot(X_train.T, adjustments)
    
print("Weights of synapses")
print(weights_for_synapses)

print(predictions) # Expected: [0,1,1,0]


# %% In [40]
# initialize random weights
weights_for_synapses = 2 * np.random.random((3, 1)) - 1 
# print(2 * np.random.random((3, 1)) - 1)

# training loop
for iteration in range(9000):
    predictions = sigmoid(np.dot(X_train, weights_for_synapses)) 
    error = y_train - predictions
    adjustments = error * sigm_derivative(predictions)
    weights_for_synapses += np.dot(X_train.T, adjustments)
#     weights_for_synapses += np.dot(np.ones(4), adjustments)
    
print("Weights of synapses")
print(weights_for_synapses)

print(predictions) # Expected: [0,1,1,0]


# %% In [19]
import numpy as np

# helper functions
def sigmoid(input):
    return 1 / (1 + np.exp(-input))

def sigm_derivative(x):
    return x * (1 - x)

# define training inputs
X_train = np.array([[0,0,1],
                    [1,1,1],
                    [1,0,1],
                    [0,1,1]])

# Old: y_train = np.array([[0,1,1,0]]).T 
# define training outputs
# now the pattern is based not on the first, but on the second collumn
y_train = np.array([[0,1,0,1]]).T

# random synaptic weights
weights_for_synapses = 2 * np.random.random((3, 1)) - 1 

# training loop
for iteration in range(300):
    predictions = sigmoid(np.dot(X_train, weights_for_synapses)) 
    error = y_train - predictions
    adjustments = error * sigm_derivative(predictions)
    weights_for_synapses += np.dot(X_train.T, adjustments)
    
print("Weights of synapses")
print(weights_for_synapses)

print(predictions)


# %% In [7]
predictions = sigmoid(np.dot(X_train, weights_for_synapses))


# %% In [41]
# define training inputs
X_train_new = np.array([[1,0,1]]) # change the numbers, see if the network identified the logic
predictions = sigmoid(np.dot(X_train_new, weights_for_synapses)) 
print(predictions)


# %% In [25]
import numpy as np

def tanh(x):
    return (np.exp(x)-np.exp(-x))/(np.exp(x)+np.exp(-x))

def tanh_derivative(x):
    return 1-x**2

X_train = np.array([[0,0,1],
                    [1,1,1],
                    [1,0,1],
                    [0,1,1]])

y_train = np.array([[0,1,1,0]]).T
np.random.seed(5)
weights_for_synapses = 2 * np.random.random((3, 1)) - 1

print("Weights of synapses")
print(weights_for_synapses)

# training loop
for iteration in range(300):
    predictions = tanh(np.dot(X_train, weights_for_synapses)) 
    error = y_train - predictions
    adjustments = error * tanh_derivative(predictions)
    weights_for_synapses += np.dot(X_train.T, adjustments)
    
print("Weights of synapses")
print(weights_for_synapses)

print(predictions) # [0,1,1,0]


# %% In [8]
import numpy as np

# define the activation function
def relu(x):
    return x * (x > 0)

def relu_derivative(x):
    return 1. * (x > 0)

# define the normalizing function (used for constraining the output to a range (0, 1))
def softmax(z):
    expz = np.exp(z - np.max(z))
    return expz / expz.sum(axis=0, keepdims=True)

X_train = np.array([[0,0,1],
                    [1,1,1],
                    [1,0,1],
                    [0,1,1]])

y_train = np.array([[0,1,1,0]]).T
np.random.seed(5)
weights_for_synapses = 2 * np.random.random((3, 1))

# print("Weights of synapses")
# print(weights_for_synapses)

# training loop
for iteration in range(2000):
    interm = relu(np.dot(X_train, weights_for_synapses))
    predictions = softmax(interm)
    error = (y_train - predictions)
    adjustments = error * relu_derivative(predictions)
    weights_for_synapses += np.dot(X_train.T, adjustments)
    
print("Weights of synapses")
print(weights_for_synapses)

# TODO :: force unscientific notation
print(predictions) # [0,1,1,0] ... 4.00883733e-02 --- 0.0040088
