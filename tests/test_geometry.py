"""Our numpy geometry pipeline against MediaPipe's own facial_transformation_matrixes."""

import numpy as np
import pytest

from blender_facemesh.core.rotations import matrix_to_quaternion, quaternion_to_matrix, rotation_angle_deg, rotation_part
from blender_facemesh.core.solve.geometry import FaceGeometry, weighted_procrustes

from conftest import FOOTAGE_CLIPS, track_clip


def test_weighted_procrustes_recovers_a_known_similarity(rng, face_model):
    src = face_model.canonical_vertices
    r = quaternion_to_matrix(rng.normal(size=4))
    dst = 1.3 * src @ r.T + np.array([2.0, -1.0, -40.0])
    w = face_model.procrustes_weights
    basis = w > 0
    m = weighted_procrustes(src[basis], dst[basis], np.sqrt(w[basis]))
    np.testing.assert_allclose(m[:3, :3], 1.3 * r, atol=1e-9)
    np.testing.assert_allclose(m[:3, 3], [2.0, -1.0, -40.0], atol=1e-9)


def test_quaternion_round_trip(rng):
    for _ in range(50):
        r = quaternion_to_matrix(rng.normal(size=4))
        assert rotation_angle_deg(quaternion_to_matrix(matrix_to_quaternion(r)), r) < 1e-6


@pytest.mark.parametrize("clip", FOOTAGE_CLIPS)
def test_pose_matches_mediapipe_on_every_frame(clip, footage, face_model):
    (w, h), detections = track_clip(footage / clip, face_model)
    geo = FaceGeometry(face_model.canonical_vertices, face_model.procrustes_weights, w, h, 63.0)
    n = 0
    worst_rot = worst_trans = 0.0
    for det in detections:
        for face in det.faces:
            pose, metric, mesh = geo.solve(face.landmarks)
            worst_rot = max(worst_rot, rotation_angle_deg(rotation_part(pose), rotation_part(face.mp_matrix)))
            worst_trans = max(worst_trans, float(np.linalg.norm(pose[:3, 3] - face.mp_matrix[:3, 3])))
            n += 1
    assert n >= 0.95 * len(detections)
    assert worst_rot < 0.5, f"rotation differs by {worst_rot:.3f} deg"
    assert worst_trans < 0.5, f"translation differs by {worst_trans:.3f} cm"


def test_pose_free_mesh_is_aligned_with_the_canonical_face(footage, face_model):
    (w, h), detections = track_clip(footage / "tv_interview_headturn_224.mp4", face_model)
    geo = FaceGeometry(face_model.canonical_vertices, face_model.procrustes_weights, w, h)
    rms = []
    for det in detections[::10]:
        _, _, mesh = geo.solve(det.faces[0].landmarks)
        rms.append(np.sqrt(((mesh - face_model.canonical_vertices) ** 2).sum(1).mean()))
    # the head turns up to ~26 deg in this clip; without the pose the mesh stays near the canonical face
    assert max(rms) < 1.0, max(rms)


def test_field_of_view_changes_distance_not_direction(footage, face_model):
    (w, h), detections = track_clip(footage / "studio_jaw_blink_smile.mp4", face_model)
    lm = detections[0].faces[0].landmarks
    p63 = FaceGeometry(face_model.canonical_vertices, face_model.procrustes_weights, w, h, 63).solve(lm)[0]
    p40 = FaceGeometry(face_model.canonical_vertices, face_model.procrustes_weights, w, h, 40).solve(lm)[0]
    # a narrower lens means the same face is further away
    assert p40[2, 3] < p63[2, 3] - 5
    with pytest.raises(ValueError):
        FaceGeometry(face_model.canonical_vertices, face_model.procrustes_weights, w, h, 0)
