"""Training the network families: one trainer (AdamW, EMA, clipping, budgets) and batched cells."""
