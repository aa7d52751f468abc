"""SimCLR (MODELS.md family 2): two-view augmentation, NT-Xent, LARS, a
small-input ResNet encoder with a projection head, large batches on small
machines (gradient caching), and the linear probe on the frozen encoder."""
