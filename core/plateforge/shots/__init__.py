"""Synthetic shots with exact ground truth: the demo's footage, the tests' fixtures, the bench's analytic set.

Scaffolding, not the product: nothing in the host package's core modules imports these.

* :mod:`.synthetic`: a plate with a rig to paint out, its exact clean plate and roto masks
  (:func:`~plateforge.shots.synthetic.make_shot`);
* :mod:`.dailies`: a subject moving over the same set, with its exact matte
  (:func:`~plateforge.shots.dailies.make_matte_shot`);
* :mod:`.relit`: the same set relit and graded, with normal and position AOVs
  (:func:`~plateforge.shots.relit.make_relit_shot`).
"""
