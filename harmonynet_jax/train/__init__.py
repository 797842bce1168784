"""Training: phases as optax masks, losses, device mesh, checkpoints, the loop."""
