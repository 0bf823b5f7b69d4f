"""GAN training: the loop, snapshots and exact resume, multi-process training.

``training_loop.run(options, run_dir, inputs, ...)`` trains; ``run_dir`` finds runs and snapshots;
``state`` reads and writes training states; ``distributed`` sets up several processes.
"""
