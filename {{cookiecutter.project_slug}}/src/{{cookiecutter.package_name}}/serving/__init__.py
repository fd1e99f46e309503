"""`predict`, `serve`, `bench` and `export`: the trained model answering inputs."""
