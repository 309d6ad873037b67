"""Per-scene settings (``scene.facemesh``): source, targets, mapping list, calibration, baking.

They live on the scene so they are saved with the .blend and differ per shot; machine-wide
choices (model file, delegate, live smoothing) are add-on preferences instead (preferences.py).
"""

import bpy
from bpy.props import (BoolProperty, CollectionProperty, EnumProperty, FloatProperty,
                       IntProperty, PointerProperty, StringProperty)

MISSING_ITEMS = [("HOLD", "Hold", "Keep the last tracked value through frames without a face"),
                 ("BLEND", "Blend", "Interpolate across frames without a face"),
                 ("EMPTY", "Leave Empty", "No keys where the face was lost")]
SOURCE_ITEMS = [("CAMERA", "Camera", "A webcam, by its number"),
                ("SIMULATED", "Video as Live", "Play a video file at real-time pace as if it were a camera"),
                ("VIDEO", "Video File", "Process every frame of a video file"),
                ("LIVELINK", "Live Link Face", "Epic's iPhone app streaming to this computer (UDP, port 11111)"),
                ("IFACIALMOCAP", "iFacialMocap", "The iFacialMocap iPhone app streaming to this computer (UDP, port 49983)")]
PHONE_SOURCES = {"LIVELINK": "livelink", "IFACIALMOCAP": "ifacialmocap"}


def _is_mesh(_self, obj):
    return obj.type == "MESH"


def _is_armature(_self, obj):
    return obj.type == "ARMATURE"


def _is_character(_self, obj):
    return obj.type in ("ARMATURE", "MESH", "EMPTY")


GAZE_ITEMS = [("AUTO", "Automatic", "Eye bones where the armature has them, else the eyeLook shape keys"),
              ("BONES", "Eye Bones", "Turn the eye bones; eyeLook shape keys are left alone"),
              ("KEYS", "Shape Keys", "Drive the eyeLook shape keys; eye bones are left alone"),
              ("BOTH", "Both", "Eye bones and eyeLook keys (only for rigs whose keys do not move the eyeballs)")]


LEVEL_ITEMS = [("OFF", "Off", "Raw MediaPipe values"),
               ("RESPONSIVE", "Responsive", "Light smoothing: every twitch is kept"),
               ("BALANCED", "Balanced", "Jitter removed, blinks and fast turns kept"),
               ("SMOOTH", "Smooth", "Strong smoothing: calm, may soften the quickest blinks")]
PRESET_ITEMS = [("RAW", "Raw", "No smoothing: MediaPipe's values as tracked"),
                ("RESPONSIVE", "Responsive", "Every region responsive"),
                ("BALANCED", "Balanced", "Every region balanced (the measured default)"),
                ("SMOOTH", "Smooth", "Every region smooth"),
                ("CUSTOM", "Custom", "Set per region below")]
from .core.solve.smoothing import REGIONS as SMOOTHING_REGIONS  # noqa: E402  (the core's five, one list)


def _preset_changed(self, context):
    if self.preset != "CUSTOM":
        level = "OFF" if self.preset == "RAW" else self.preset
        for r in SMOOTHING_REGIONS:
            if getattr(self, r) != level:
                setattr(self, r, level)


def _region_changed(self, context):
    levels = {getattr(self, r) for r in SMOOTHING_REGIONS}
    preset = "CUSTOM"
    if len(levels) == 1:
        level = levels.pop()
        preset = "RAW" if level == "OFF" else level
    if self.preset != preset:
        self.preset = preset


class FACEMESH_PG_smoothing(bpy.types.PropertyGroup):
    """Smoothing per face region (the core's ``Smoothing``): a preset sets every region."""

    preset: EnumProperty(name="Smoothing", items=PRESET_ITEMS, default="BALANCED", update=_preset_changed)
    eyes: EnumProperty(name="Eyes", items=LEVEL_ITEMS, default="BALANCED", update=_region_changed)
    brows: EnumProperty(name="Brows", items=LEVEL_ITEMS, default="BALANCED", update=_region_changed)
    mouth: EnumProperty(name="Mouth and Jaw", items=LEVEL_ITEMS, default="BALANCED", update=_region_changed)
    head_rotation: EnumProperty(name="Head Rotation", items=LEVEL_ITEMS, default="BALANCED", update=_region_changed)
    head_position: EnumProperty(name="Head Position", items=LEVEL_ITEMS, default="BALANCED", update=_region_changed)


def draw_smoothing(layout, pg, heading: str) -> None:
    col = layout.column(heading=heading)
    col.prop(pg, "preset")
    sub = col.column(align=True)
    for r in SMOOTHING_REGIONS:
        sub.prop(pg, r)


def _recording_changed(self, context):
    from .blender import live

    live.set_recording(context, self.recording)


class FACEMESH_PG_mapping(bpy.types.PropertyGroup):
    """One channel of the retarget: an ARKit score onto one shape key of the target."""

    source: StringProperty(name="Channel", description="ARKit channel the value comes from")
    target: StringProperty(name="Shape Key", description="Shape key on the target mesh")
    gain: FloatProperty(name="Gain", default=1.0, soft_min=0.0, soft_max=3.0)
    offset: FloatProperty(name="Offset", default=0.0, soft_min=-1.0, soft_max=1.0)
    clamp_min: FloatProperty(name="Min", default=0.0, soft_min=-1.0, soft_max=1.0)
    clamp_max: FloatProperty(name="Max", default=1.0, soft_min=0.0, soft_max=2.0)
    enabled: BoolProperty(name="On", default=True)


class FACEMESH_PG_key(bpy.types.PropertyGroup):
    """A shape key of the character that the mapping leaves undriven, and why."""

    name: StringProperty(name="Shape Key")
    reason: StringProperty(name="Why", description="Why it is not driven")


class FACEMESH_PG_take(bpy.types.PropertyGroup):
    """A saved take as the panel lists it (the data stays in its file)."""

    name: StringProperty(name="Name")
    filepath: StringProperty(name="File", subtype="FILE_PATH")
    frames: IntProperty(name="Frames")
    duration: FloatProperty(name="Length", unit="TIME_ABSOLUTE")
    fps: FloatProperty(name="fps")
    source: StringProperty(name="Source", description="What the take was recorded from")


class FACEMESH_PG_performer(bpy.types.PropertyGroup):
    """A face in view or in a take (a phone, for the iPhone apps), and the character it drives."""

    face_id: IntProperty(name="Face", min=0, description="The tracker's id of this face (stable while it stays near)")
    name: StringProperty(name="Performer", description="Who this is (a phone's subject name, or one you type)")
    character: PointerProperty(
        name="Character", type=bpy.types.Object, poll=_is_character,
        description="The character this performer drives (empty on the first performer: the scene's character; "
                    "on the others: not driven)")
    performer_path: StringProperty(
        name="Calibration", subtype="FILE_PATH",
        description="This performer's calibration (neutral, ranges, face shape); empty on the first performer: "
                    "the scene's performer file")
    frames: IntProperty(name="Frames", description="Frames of the take with this face")
    in_view: BoolProperty(name="In View", description="Seen by the running capture in the last few seconds")
    thumbnail: StringProperty(name="Thumbnail", description="Image of this face (the name of a Blender image)")


class FACEMESH_PG_settings(bpy.types.PropertyGroup):
    source: EnumProperty(name="Source", items=SOURCE_ITEMS, default="CAMERA")
    camera_index: IntProperty(name="Camera", min=0, max=15, default=0,
                              description="Camera number as the system lists it (0 = first)")
    video_path: StringProperty(name="Video", subtype="FILE_PATH")
    take_dir: StringProperty(name="Takes Folder", subtype="DIR_PATH", default="//facemesh_takes/",
                             description="Where recorded and processed takes are saved")
    last_take: StringProperty(name="Take", subtype="FILE_PATH",
                              description="The most recent take (re-bake it onto another target)")
    recording: BoolProperty(name="Record", default=False, update=_recording_changed,
                            description="Record the live capture into a take; it is baked when recording stops")

    character: PointerProperty(
        name="Character", type=bpy.types.Object, poll=_is_character,
        description="The character to animate: its armature, or its mesh (or the empty above its meshes) "
                    "when it has no armature. Its meshes with shape keys and its head, neck and eye bones are found")
    target_mesh: PointerProperty(name="Face Mesh", type=bpy.types.Object, poll=_is_mesh,
                                 description="Override: the mesh whose shape keys come first (empty: found from the character)")
    target_rig: PointerProperty(name="Armature", type=bpy.types.Object, poll=_is_armature,
                                description="Override: the armature that gets the head pose (empty: the character's)")
    head_bone: StringProperty(name="Head", default="", description="Empty: found by name and hierarchy")
    neck_bone: StringProperty(name="Neck", default="", description="Empty: found by name and hierarchy")
    eye_left_bone: StringProperty(name="Left Eye", default="", description="Empty: found by name and hierarchy")
    eye_right_bone: StringProperty(name="Right Eye", default="", description="Empty: found by name and hierarchy")
    gaze: EnumProperty(name="Gaze", items=GAZE_ITEMS, default="AUTO",
                       description="What the performer's gaze drives (never both unless asked)")
    eye_range: FloatProperty(name="Eye Range", min=0.0, max=60.0, default=30.0, precision=1,
                             description="How far the eye bones turn sideways at a full look (degrees); "
                                         "stylised eyes want less")
    neck_share: FloatProperty(name="Neck Share", min=0.0, max=1.0, default=0.3, subtype="FACTOR",
                              description="How much of the head's rotation the neck bone takes")
    use_location: BoolProperty(name="Head Location", default=False,
                               description="Also move the neck bone with the head's position (metres)")

    num_faces: IntProperty(name="Faces", min=1, max=8, default=1,
                           description="How many faces to track at once (one per performer in view); each "
                                       "listed performer drives their own character")
    performers: CollectionProperty(type=FACEMESH_PG_performer,
                                   description="The faces in view or in the take, each driving its own character")
    performer_index: IntProperty(default=0)
    phone_port: IntProperty(name="Port", min=0, max=65535, default=0,
                            description="UDP port to listen on (0: the app's default, 11111 for Live Link Face, "
                                        "49983 for iFacialMocap)")
    phone_listen: StringProperty(name="Listen On", default="0.0.0.0",
                                 description="Network interface to listen on: 0.0.0.0 for all (the phone is on "
                                             "your local network), or one of this computer's addresses")
    phone_allow: StringProperty(name="Allow Only", default="",
                                description="Accept packets only from these addresses (comma-separated; "
                                            "empty: any sender)")
    phone_address: StringProperty(name="Phone", default="",
                                  description="iFacialMocap: the phone's address, to ask it to stream here "
                                              "(empty: set this computer's address in the app instead)")

    takes: CollectionProperty(type=FACEMESH_PG_take)
    take_index: IntProperty(default=0)
    mappings: CollectionProperty(type=FACEMESH_PG_mapping)
    mapping_index: IntProperty(default=0)
    mapping_preset: StringProperty(name="Preset", default="")
    undriven: CollectionProperty(type=FACEMESH_PG_key, description="The character's keys Auto Map left undriven")
    undriven_index: IntProperty(default=0)
    transfer: CollectionProperty(type=FACEMESH_PG_key,
                                 description="How closely the character follows the performer, per channel")
    transfer_index: IntProperty(default=0)

    performer_path: StringProperty(name="Performer", subtype="FILE_PATH",
                                   description="Performer calibration (neutral and ranges), a .json file")
    use_calibration: BoolProperty(name="Apply Calibration", default=True)
    use_face_shape: BoolProperty(
        name="Head Pose from Face Shape", default=True,
        description="Solve the head pose on the performer's calibrated face instead of MediaPipe's average "
                    "face, when the face shape passes its check (turns wide enough, a low reprojection error, "
                    "the camera's field of view given): 0.15 degrees closer to the truth on average on fast "
                    "turns, up to 0.4 on faces far from the average (bench/quality.py)")
    neutral_seconds: FloatProperty(name="Neutral Length", min=0.3, max=10.0, default=1.5, unit="TIME_ABSOLUTE")

    missing: EnumProperty(name="No Face", items=MISSING_ITEMS, default="HOLD")
    smoothing: PointerProperty(type=FACEMESH_PG_smoothing, name="Bake Smoothing",
                               description="Applied when a take is baked or exported (no lag: it looks at the "
                                           "frames after as well as before); takes keep the raw values")
    fit_shapes: BoolProperty(name="Fit Shape Keys", default=True,
                             description="Fit the capture face's 52 shape keys to the performer from the take")
    replay_error_mm: FloatProperty(name="Replay Error (mm)", default=-1.0,
                                   description="RMS error of the fitted shape keys replaying the take")
    match_scene: BoolProperty(name="Match Scene", default=False, description="Set the scene's fps and range from the video")
    add_sound: BoolProperty(name="Add Sound", default=True, description="The video's sound as a strip under the keys")
    add_reference: BoolProperty(name="Reference Camera", default=False,
                                description="A camera with the video as its background")
    frame_start: IntProperty(name="Start", min=0, default=0, description="First video frame to process")
    frame_end: IntProperty(name="End", min=0, default=0, description="Last video frame (0: to the end)")


classes = (FACEMESH_PG_smoothing, FACEMESH_PG_mapping, FACEMESH_PG_key, FACEMESH_PG_take, FACEMESH_PG_performer,
           FACEMESH_PG_settings)


def register():
    for cls in classes:
        bpy.utils.register_class(cls)
    bpy.types.Scene.facemesh = PointerProperty(type=FACEMESH_PG_settings)


def unregister():
    del bpy.types.Scene.facemesh
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
