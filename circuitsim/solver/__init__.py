"""The numpy engine's nodal solver: the crossbar's exact nodal equations (dc), solved with a
sparse factorization in a geometry-aware elimination order (ordering)."""
