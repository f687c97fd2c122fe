import Calibration
import ToolKit
