"""The compiled kernel modules (microgradnet._kernels.<name>, from csrc/<name>.pyx), named
once: setup.py builds them (it reads this file without importing the package) and
microgradnet.backend loads and configures them. Outside _kernels, so that reading the names
loads no extension."""

# Their public functions make up the Cython kernel set (microgradnet.backend).
KERNEL_SET_MODULES = ("matmul", "activations", "losses", "optim", "elementwise")

# Every module built from csrc/<name>.pyx: the kernel set and the captured training step.
KERNEL_MODULES = (*KERNEL_SET_MODULES, "trainer")

# Built with OpenMP (csrc/threads.pxi): their large elementwise loops may run on several
# threads. Not the captured training step: its arrays are a small net's.
OPENMP_MODULES = ("activations", "losses", "matmul", "elementwise")

# Whose thread count microgradnet.set_num_threads sets (each has _set_num_threads and
# _get_num_threads): the OpenMP ones, and trainer, whose shuffling runs draw the next
# epochs' orders on a second (POSIX) thread.
THREAD_COUNT_MODULES = (*OPENMP_MODULES, "trainer")
