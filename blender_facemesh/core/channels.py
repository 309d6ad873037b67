"""Channel names and counts: ARKit's 52 blendshapes in Apple's (and Live Link Face's) order, and
how many landmarks and mesh vertices MediaPipe's face model has.

MediaPipe's model emits 52 scores too, but as `_neutral` + 51 ARKit shapes in its own order;
ARKit's `tongueOut` is not produced. Takes store the ARKit 52 so that every tool that speaks
ARKit (Live Link Face, Unreal, Faceit, VRM/ReadyPlayerMe rigs) lines up by name.
"""

ARKIT_NAMES = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft",
    "eyeSquintLeft", "eyeWideLeft", "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight",
    "eyeLookOutRight", "eyeLookUpRight", "eyeSquintRight", "eyeWideRight", "jawForward",
    "jawLeft", "jawRight", "jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthLeft",
    "mouthRight", "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthPressLeft",
    "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft",
    "mouthUpperUpRight", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft",
    "browOuterUpRight", "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "noseSneerLeft",
    "noseSneerRight", "tongueOut",
)
ARKIT_INDEX = {name: i for i, name in enumerate(ARKIT_NAMES)}

N_LANDMARKS = 478      # MediaPipe's landmarks per face: the 468 mesh vertices + 10 iris points
N_MESH_VERTICES = 468  # the canonical face mesh (the model bundle's geometry metadata)
