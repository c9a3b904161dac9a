"""nncompile: a declarative model-spec compiler for PyTorch.

`nncompile.compiler` checks specs and builds them into torch.fx modules (its check path never imports
torch); `nncompile.runtime` trains them. In the repository they are the folders `compiler/` and
`runtime/`, installed under this one namespace. Importing `nncompile` imports neither.
"""
