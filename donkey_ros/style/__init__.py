"""Neural style transfer: the plain core (``stylizer``), its ROS service node (``style_node``),
style augmentation of training frames (``augment``) and the ``donkey-ros stylize`` command."""
