"""Stand-alone device processes silonet starts for tests and benchmarks."""
