"""`prepare`: the data in one shape, split and saved for training and evaluation."""
