"""Review queues, leases, labels and the classifier (the review issue fills this in)."""
