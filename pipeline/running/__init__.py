"""Running a build: the Ray executor, the shard runner, the build of every step, the plug-in registry."""
