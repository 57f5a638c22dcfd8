"""Host-independent vocabulary: policy, results, runtime names, errors and the factory."""
