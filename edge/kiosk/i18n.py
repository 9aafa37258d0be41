"""Screen texts: Vietnamese first, English on the toggle; a missing English text falls back to Vietnamese."""

from __future__ import annotations

LANGUAGES = ("vi", "en")

# key -> (Vietnamese, English). Placeholders use str.format names: {n}, {compartment}, {minutes}.
STRINGS: dict[str, tuple[str, str]] = {
    # pickup kiosk
    "kiosk.title": ("Nhận kết quả hồ sơ", "Collect your documents"),
    "kiosk.start": ("Nhận kết quả", "Get my result"),
    "kiosk.start_hint": ("Chạm vào nút hoặc nhấn nút xanh bên dưới màn hình",
                         "Touch the button or press the green button below the screen"),
    "kiosk.code_title": ("Quét mã QR trên giấy hẹn", "Scan the QR code on your receipt"),
    "kiosk.code_hint": ("Đưa mã QR vào trước camera, hoặc nhập mã hồ sơ",
                        "Hold the QR code in front of the camera, or type the dossier code"),
    "kiosk.code_label": ("Mã hồ sơ", "Dossier code"),
    "kiosk.code_submit": ("Tiếp tục", "Continue"),
    "kiosk.code_wrong": ("Không tìm thấy mã hồ sơ này. Vui lòng kiểm tra lại (còn {n} lần thử).",
                         "We could not find this dossier code. Please check it (attempts left: {n})."),
    "kiosk.code_bad": ("Mã không đúng định dạng. Vui lòng kiểm tra lại (còn {n} lần thử).",
                       "This is not a dossier code. Please check it (attempts left: {n})."),
    "kiosk.face_title": ("Vui lòng nhìn vào camera", "Please look at the camera"),
    "kiosk.face_hint": ("Giữ khuôn mặt trong khung, không đeo khẩu trang hay kính râm",
                        "Keep your face in the frame, without a mask or sunglasses"),
    "kiosk.face_checking": ("Đang kiểm tra…", "Checking…"),
    "kiosk.face_retry": ("Chưa khớp, vui lòng thử lại (còn {n} lần).", "No match yet, please try again ({n} left)."),
    "kiosk.use_pin": ("Dùng mã PIN thay thế", "Use a PIN instead"),
    "kiosk.pin_title": ("Nhập mã PIN trên giấy hẹn", "Enter the PIN from your receipt"),
    "kiosk.pin_hint": ("Mã PIN gồm các chữ số được in trên giấy hẹn hoặc gửi qua tin nhắn",
                       "The PIN is printed on your receipt or was sent to you by message"),
    "kiosk.pin_after_face": ("Không nhận diện được khuôn mặt. Vui lòng nhập mã PIN.",
                             "We could not confirm your face. Please enter your PIN."),
    "kiosk.pin_wrong": ("Mã PIN không đúng (còn {n} lần thử).", "Wrong PIN (attempts left: {n})."),
    "kiosk.pin_submit": ("Xác nhận", "Confirm"),
    "kiosk.open_title": ("Ngăn số {compartment} đang mở", "Compartment {compartment} is open"),
    "kiosk.open_hint": ("Vui lòng lấy hồ sơ và đóng cửa ngăn lại", "Please take your papers and close the door"),
    "kiosk.close_reminder": ("Vui lòng đóng cửa ngăn số {compartment}", "Please close compartment {compartment}"),
    "kiosk.thanks_title": ("Cảm ơn bạn!", "Thank you!"),
    "kiosk.thanks_hint": ("Chúc bạn một ngày tốt lành.", "Have a good day."),
    "kiosk.cancel": ("Hủy", "Cancel"),
    "kiosk.back": ("Về màn hình đầu", "Back to start"),
    "kiosk.busy": ("Đang xử lý…", "Working…"),
    "kiosk.lang_toggle": ("English", "Tiếng Việt"),
    # kind messages (end of a session)
    "msg.no_result": ("Hồ sơ này chưa có kết quả để nhận tại tủ. Vui lòng quay lại sau hoặc liên hệ bộ phận một cửa.",
                      "There is no result waiting in the locker for this dossier yet. Please come back later or ask at the office."),
    "msg.expired": ("Đã quá hạn nhận tại tủ. Kết quả đã được chuyển về bộ phận một cửa, vui lòng đến nhận trong giờ hành chính.",
                    "The pickup period has ended. Your result is back at the office: please collect it during opening hours."),
    "msg.collected": ("Kết quả của hồ sơ này đã được nhận trước đó. Nếu không phải bạn, vui lòng liên hệ bộ phận một cửa.",
                      "This result has already been collected. If that was not you, please contact the office."),
    "msg.locked": ("Đã nhập sai quá số lần cho phép. Vui lòng thử lại sau {minutes} phút hoặc liên hệ bộ phận một cửa.",
                   "Too many wrong attempts. Please try again in {minutes} minutes or contact the office."),
    "msg.too_many_codes": ("Không tìm thấy mã hồ sơ. Vui lòng kiểm tra giấy hẹn hoặc liên hệ bộ phận một cửa.",
                           "We could not find the dossier code. Please check your receipt or contact the office."),
    "msg.no_pin": ("Hồ sơ này cần xác nhận tại quầy. Vui lòng đến bộ phận một cửa trong giờ hành chính.",
                   "This dossier must be confirmed at the desk. Please come to the office during opening hours."),
    "msg.timeout": ("Đã hết thời gian. Vui lòng bắt đầu lại.", "The session timed out. Please start again."),
    "msg.cancelled": ("Đã hủy.", "Cancelled."),
    "msg.out_of_service": ("Tủ tạm ngừng phục vụ. Xin lỗi vì sự bất tiện.", "The locker is out of service. We are sorry."),
    "msg.door_left_open": ("Cửa ngăn chưa được đóng. Cán bộ đã được thông báo.",
                           "The door was left open. Staff have been told."),
    # face guidance (from the vision service's reasons)
    "guide.ok": ("Giữ nguyên…", "Hold still…"),
    "guide.no_face": ("Không thấy khuôn mặt. Vui lòng đứng trước camera.", "No face seen. Please stand in front of the camera."),
    "guide.too_small": ("Vui lòng lại gần hơn", "Please come closer"),
    "guide.too_far": ("Vui lòng lại gần hơn", "Please come closer"),
    "guide.too_close": ("Vui lòng lùi ra xa một chút", "Please step back a little"),
    "guide.blurred": ("Vui lòng đứng yên", "Please hold still"),
    "guide.blur": ("Vui lòng đứng yên", "Please hold still"),
    "guide.pose": ("Vui lòng nhìn thẳng vào camera", "Please face the camera"),
    "guide.dark": ("Quá tối, vui lòng đứng gần đèn hơn", "Too dark, please move into the light"),
    "guide.too_dark": ("Quá tối, vui lòng đứng gần đèn hơn", "Too dark, please move into the light"),
    "guide.bright": ("Quá sáng, vui lòng tránh ánh sáng chiếu thẳng", "Too bright, please avoid direct light"),
    "guide.too_bright": ("Quá sáng, vui lòng tránh ánh sáng chiếu thẳng", "Too bright, please avoid direct light"),
    "guide.multiple_faces": ("Chỉ một người đứng trước camera", "Only one person in front of the camera, please"),
    "guide.camera": ("Camera chưa sẵn sàng", "The camera is not ready"),
    # reception
    "reception.title": ("Tiếp nhận hồ sơ", "Reception"),
    "reception.scan_hint": ("Quét mã QR của thủ tục", "Scan the procedure's QR code"),
    "reception.code_label": ("Mã thủ tục hoặc nội dung QR", "Procedure code or QR text"),
    "reception.lookup": ("Tra cứu", "Look up"),
    "reception.papers": ("Giấy tờ cần có", "Papers needed"),
    "reception.fee": ("Lệ phí", "Fee"),
    "reception.time": ("Thời gian giải quyết", "Processing time"),
    "reception.service": ("Quầy phục vụ", "Service"),
    "reception.priority": ("Ưu tiên", "Priority"),
    "reception.priority_none": ("Không ưu tiên", "None"),
    "reception.issue": ("Cấp thẻ rung", "Give a pager card"),
    "reception.take_card": ("Mời nhận thẻ rung số {card}", "Please take pager card {card}"),
    "reception.ticket": ("Số thứ tự {ticket}", "Ticket {ticket}"),
    "reception.same_day": ("Trong ngày", "The same day"),
    "reception.days": ("{n} ngày làm việc", "{n} working days"),
    "priority.elderly": ("Người cao tuổi", "Elderly"),
    "priority.disabled": ("Người khuyết tật", "Disabled"),
    "priority.pregnant": ("Phụ nữ mang thai", "Pregnant"),
    "priority.child": ("Người có con nhỏ dưới 6 tuổi", "With a child under 6"),
    "priority.child_under_6": ("Người có con nhỏ dưới 6 tuổi", "With a child under 6"),
    "priority.veteran": ("Người có công với cách mạng", "Veteran"),
    "priority.veterans": ("Người có công với cách mạng", "Veteran"),
    "reception.not_found": ("Không tìm thấy thủ tục này trong danh mục", "This procedure is not in the catalog"),
    "reception.not_procedure": ("Mã này không phải mã thủ tục", "This is not a procedure code"),
    # counter / display
    "counter.title": ("Quầy {counter}", "Counter {counter}"),
    "counter.next": ("Gọi số tiếp", "Call next"),
    "counter.recall": ("Gọi lại", "Recall"),
    "counter.no_show": ("Vắng mặt", "No-show"),
    "counter.done": ("Xong", "Done"),
    "counter.pause": ("Tạm nghỉ", "Pause"),
    "counter.resume": ("Tiếp tục phục vụ", "Resume"),
    "counter.transfer": ("Chuyển", "Transfer"),
    "counter.serving": ("Đang phục vụ", "Now serving"),
    "counter.waiting": ("Đang chờ", "Waiting"),
    "counter.empty": ("Không có ai đang chờ", "Nobody is waiting"),
    "counter.rate": ("Đánh giá", "Rating"),
    "display.title": ("Mời công dân", "Now serving"),
    "display.counter": ("Quầy", "Counter"),
    "display.number": ("Số", "Number"),
    "display.waiting": ("{n} người chờ · khoảng {minutes} phút", "{n} waiting · about {minutes} min"),
    "display.wait": ("Thời gian chờ dự kiến", "Expected wait"),
    # staff loading
    "loading.title": ("Nạp hồ sơ vào tủ", "Load results into the locker"),
    "loading.staff_pin": ("Mã cán bộ", "Staff PIN"),
    "loading.receipt": ("Mã hồ sơ", "Dossier code"),
    "loading.size": ("Kích thước ngăn", "Compartment size"),
    "loading.pin": ("PIN cho công dân (không bắt buộc)", "Citizen PIN (optional)"),
    "loading.deadline": ("Hạn nhận (ngày)", "Pickup deadline (days)"),
    "loading.submit": ("Mở ngăn trống", "Open a free compartment"),
    "loading.opened": ("Đã mở ngăn số {compartment}: đặt hồ sơ vào và đóng cửa", "Compartment {compartment} is open: put the papers in and close it"),
    # staff login (desk screens on the LAN)
    "staff.title": ("Đăng nhập cán bộ", "Staff login"),
    "staff.id": ("Mã cán bộ", "Staff id"),
    "staff.pin": ("Mã PIN", "PIN"),
    "staff.submit": ("Đăng nhập", "Log in"),
    "staff.logout": ("Đăng xuất", "Log out"),
    "staff.wrong": ("Mã cán bộ hoặc mã PIN không đúng.", "Wrong staff id or PIN."),
    "staff.locked": ("Đã nhập sai quá số lần cho phép. Vui lòng thử lại sau {minutes} phút.",
                     "Too many wrong PINs. Please try again in {minutes} minutes."),
    "staff.login_required": ("Vui lòng đăng nhập.", "Please log in."),
    "staff.bad_origin": ("Yêu cầu không đến từ màn hình của thiết bị này.", "This request did not come from this device's screens."),
    # status
    "status.title": ("Trạng thái thiết bị", "Device status"),
    "status.services": ("Dịch vụ", "Services"),
    "status.alarms": ("Cảnh báo", "Alarms"),
    "status.broker": ("Kết nối MQTT", "Broker link"),
    "status.disk": ("Ổ đĩa", "Disk"),
    "status.temperature": ("Nhiệt độ CPU", "CPU temperature"),
    "status.broker_value": ("{pending} tin đang chờ gửi · broker xác nhận lần cuối {ago} giây trước",
                            "{pending} messages waiting · last acknowledged by the broker {ago} s ago"),
    "status.broker_up": ("Đang kết nối", "Connected"),
    "status.broker_down": ("Mất kết nối (sự kiện được lưu và gửi lại sau)", "Disconnected (events are kept and sent later)"),
    "status.broker_never": ("{pending} tin đang chờ gửi · chưa có xác nhận nào từ broker",
                            "{pending} messages waiting · nothing acknowledged by the broker yet"),
    "status.disk_value": ("còn trống {free} GB ({used} % đã dùng)", "{free} GB free ({used} % used)"),
    "status.none": ("Không có", "None"),
    "common.error": ("Có lỗi: {error}", "Error: {error}"),
}


def t(key: str, lang: str = "vi", **params) -> str:
    """The text of `key` in `lang` with its placeholders filled; an unknown key shows itself."""
    pair = STRINGS.get(key)
    if pair is None:
        return key
    text = pair[1] if lang == "en" and pair[1] else pair[0]
    try:
        return text.format(**params)
    except (KeyError, IndexError):
        return text


def table(lang: str) -> dict[str, str]:
    """Every string in one language, for the pages' JavaScript (placeholders left in)."""
    return {key: (en if lang == "en" and en else vi) for key, (vi, en) in STRINGS.items()}
