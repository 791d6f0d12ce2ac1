"""MuJoCo backend: compiles scene specs to MJCF and runs them as Gymnasium environments."""
