# ruff: noqa: E501  (this file is mostly document prose; long string lines are intentional)
"""Generate the binary documents of the bundled sample knowledge base.

The text of every generated document lives in this script, so the files can be
regenerated (and reviewed in diffs) at any time:

    python tools/make_sample_docs.py            # writes into kb_assistant/sample_kb/default/
    python tools/make_sample_docs.py --out DIR  # writes somewhere else

Outputs:
    expense-reimbursement.pdf  English expense policy (+ a Chinese summary page
                               when a CJK TrueType font is available)
    benefits.docx              English benefits guide (Word Heading 1/2 styles)
    IT与入职指南.docx           Chinese IT & onboarding guide (Word headings)

Requires fpdf2 and python-docx (both in the dev requirements).

A CJK font is looked up in $KB_CJK_FONT, then in a few well-known locations
(e.g. fonts-wqy-microhei / fonts-noto-cjk on Debian).  Without one the PDF is
written English-only and a warning is printed; the Chinese reimbursement rules
are then only available from the other Chinese documents.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "kb_assistant" / "sample_kb" / "default"

# Fixed timestamp so that regenerating the files does not change them needlessly.
FIXED_DATE = datetime(2024, 1, 1, 9, 0, 0, tzinfo=UTC)

CJK_FONT_CANDIDATES = [
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/System/Library/Fonts/PingFang.ttc",
    "C:/Windows/Fonts/msyh.ttc",
    "C:/Windows/Fonts/simhei.ttf",
]

# ---------------------------------------------------------------------------
# Document content
#
# Blocks are tuples:
#   ("h1", text)  ("h2", text)  ("p", text)  ("bullets", [text, ...])
#   ("numbered", [text, ...])  ("table", [header_row, row, ...])
# ---------------------------------------------------------------------------

EXPENSE_TITLE = "Lumen Tech Expense Reimbursement Policy"
EXPENSE_META = [
    "Policy owner: Finance Department, Lumen Tech (Shanghai) Co., Ltd.",
    "Version 3.0, effective 1 January 2024",
    "Questions: finance@lumentech.example or Finance hotline ext. 8300",
]

EXPENSE_EN = [
    ("h1", "1. Purpose and Scope"),
    (
        "p",
        (
            "This policy explains which business expenses Lumen Tech reimburses, the limits that apply, "
            "the documents you need, and how claims are approved and paid. It applies to all employees, "
            "including employees on probation and interns who incur expenses on company business."
        ),
    ),
    (
        "p",
        (
            "Lumen Tech reimburses expenses that are reasonable, necessary for company business, "
            "supported by valid receipts and approved according to this policy. If you are unsure whether "
            "an expense is reimbursable, ask Finance before you spend the money."
        ),
    ),
    ("h1", "2. Submission Deadlines"),
    (
        "numbered",
        [
            (
                "Submit every claim in Lumen OA within 30 calendar days of the date the expense was incurred. "
                "For business trips, the 30 days start on the last day of the trip."
            ),
            (
                "Claims submitted 31 to 90 days after the expense date are accepted only with a written explanation "
                "and the approval of your department head."
            ),
            "Expenses submitted more than 90 days after the expense date are not reimbursed.",
            "Year-end closing: expenses incurred in December must be submitted by 10 January of the following year.",
            (
                "All claims are paid in CNY. Expenses paid in a foreign currency are converted at the Bank of China "
                "reference rate on the expense date, or at the rate shown on your card statement if you attach it."
            ),
        ],
    ),
    ("h1", "3. Receipts and Invoices"),
    ("h2", "3.1 Official invoices (fapiao)"),
    (
        "numbered",
        [
            (
                "Every expense in mainland China must be supported by an official invoice (fapiao). The buyer on the "
                "fapiao must be the registered Chinese name of Lumen Tech (Shanghai) Co., Ltd., with tax ID "
                "91310104MA1FL8LX2Q (the exact billing details are listed in the HR/admin FAQ). "
                "Fapiao with a wrong company name or tax ID are rejected."
            ),
            "Electronic fapiao: upload the original PDF or OFD file to the claim. Screenshots are not accepted.",
            (
                "Paper fapiao: attach a scan to the claim and put the originals, together with the printed claim cover "
                "sheet, into the Finance drop box next to the 13th-floor pantry."
            ),
            "A payment record on its own (for example a WeChat Pay or Alipay screenshot, or a card slip) is not a receipt.",
            "For expenses outside mainland China, an itemised receipt or invoice showing the merchant, date and amount is required.",
        ],
    ),
    ("h2", "3.2 Lost receipts"),
    (
        "p",
        (
            "If a receipt is lost, complete the Lost Receipt Declaration form in OA. A declaration can cover at most "
            "CNY 200 per item and may be used no more than 2 times per calendar year. It requires the approval of "
            "your department head. Submitting the same receipt twice, or a receipt for a personal expense, is treated "
            "as a serious breach of company rules."
        ),
    ),
    ("h1", "4. Business Travel"),
    ("h2", "4.1 Pre-approval and booking"),
    (
        "numbered",
        [
            (
                "Submit a Business Travel Request in OA and get it approved by your direct manager before you book anything. "
                "International trips also need the approval of your department head."
            ),
            (
                "Book flights and hotels through the company travel platform (Ctrip Business). Bookings made on the platform "
                "are billed directly to Lumen Tech, so you do not need to pay and claim them."
            ),
            "If the platform has no suitable option, you may book yourself and claim the cost within the limits below.",
        ],
    ),
    ("h2", "4.2 Flights and trains"),
    (
        "bullets",
        [
            (
                "Flights: economy class. Employees at Director level and above may fly business class on flights "
                "scheduled to last more than 6 hours."
            ),
            "Trains: high-speed rail second class. Director level and above may take first class.",
            "If the high-speed train takes 5 hours or less, take the train instead of flying.",
            "Seat upgrades, extra baggage for personal items and change fees caused by personal plans are not reimbursable.",
        ],
    ),
    ("h2", "4.3 Hotel limits per night"),
    (
        "table",
        [
            ["Destination", "Maximum per night"],
            ["Beijing, Shanghai, Guangzhou, Shenzhen", "CNY 600"],
            ["Other cities in mainland China", "CNY 450"],
            ["Hong Kong, Macau, Taiwan and overseas", "USD 200"],
        ],
    ),
    (
        "p",
        (
            "Amounts above the limit are paid by the employee unless your department head approved the exception "
            "in the travel request (for example, during a trade fair when all hotels are more expensive)."
        ),
    ),
    ("h2", "4.4 Travel allowance (per diem)"),
    (
        "numbered",
        [
            (
                "Employees on an approved business trip receive a daily travel allowance that covers meals and small "
                "incidental costs: CNY 150 per day for domestic trips and USD 60 per day for international trips."
            ),
            (
                "The allowance is paid for every calendar day of the trip, including the days of departure and return. "
                "No receipts are needed for the allowance; it is calculated from the approved travel request."
            ),
            (
                "Because the allowance covers your meals, individual meal receipts on a business trip are not reimbursed, "
                "except client entertainment (section 5.3)."
            ),
        ],
    ),
    ("h2", "4.5 Local transport during a trip"),
    (
        "p",
        (
            "Taxis, ride-hailing, airport buses and metro rides between the airport or station, your hotel and "
            "business locations are reimbursed in full with receipts."
        ),
    ),
    ("h1", "5. Meals and Entertainment"),
    ("h2", "5.1 Overtime meals"),
    (
        "p",
        (
            "When you work until 21:00 or later on a workday with approved overtime, you may claim a dinner of up to "
            "CNY 30 per person. Attach the fapiao; the overtime request is checked automatically in OA."
        ),
    ),
    ("h2", "5.2 Team events"),
    (
        "p",
        (
            "Team dinners and activities are paid from the team-building budget of CNY 500 per person per year "
            "(see the Benefits Guide). The team manager submits one claim for the whole event."
        ),
    ),
    ("h2", "5.3 Client entertainment"),
    (
        "numbered",
        [
            (
                "Meals with clients or partners are reimbursed up to CNY 300 per person, counting both guests and "
                "Lumen Tech attendees."
            ),
            "If the total bill is expected to exceed CNY 2,000, submit an Entertainment Pre-approval in OA first.",
            (
                "List every attendee and their company on the claim. Alcohol is reimbursable only as part of client "
                "entertainment and within the per-person limit."
            ),
        ],
    ),
    ("h2", "5.4 Everyday meals"),
    (
        "p",
        (
            "Lunches and other meals on normal working days are covered by the monthly meal allowance paid with "
            "salary and cannot be claimed as expenses."
        ),
    ),
    ("h1", "6. Taxis and Local Transport"),
    (
        "numbered",
        [
            (
                "Local business trips (for example visiting a client in Shanghai): use the company DiDi Enterprise account, "
                "which is billed directly to Lumen Tech. If you pay yourself, claim the fare with a fapiao."
            ),
            (
                "Late-night taxi home: if you leave the office after 21:00 on a workday with approved overtime, the taxi or "
                "ride-hailing fare home is reimbursed up to CNY 150 per ride."
            ),
            (
                "On weekends and public holidays with approved overtime, the taxi home is reimbursable at any time, up to "
                "CNY 150 per ride."
            ),
            "Normal commuting between home and the office is not reimbursable.",
            (
                "Using your own car for business trips requires pre-approval and is reimbursed at CNY 1.5 per kilometre, "
                "plus tolls and parking with receipts."
            ),
        ],
    ),
    ("h1", "7. Expenses That Are Not Reimbursed"),
    (
        "bullets",
        [
            "Traffic fines, parking tickets and penalties of any kind.",
            "Hotel minibar, in-room movies, laundry (except on trips longer than 5 nights) and personal items.",
            "Alcohol and tobacco, except alcohol within the client entertainment limit.",
            "Flight or train upgrades and airport lounge access.",
            "Expenses for family members or friends travelling with you.",
            "Gifts for colleagues, and gifts for clients that were not pre-approved.",
            "Expenses already covered by the travel allowance, the meal allowance or another company benefit.",
        ],
    ),
    ("h1", "8. Submitting a Claim and Approval Chain"),
    ("h2", "8.1 How to submit"),
    (
        "numbered",
        [
            "Open Lumen OA > Expense > New Claim. Create one claim per business trip or per event.",
            "Select the expense category, enter the amount and business purpose, and upload the fapiao.",
            "For trips, link the claim to the approved Business Travel Request.",
        ],
    ),
    ("h2", "8.2 Approval chain"),
    (
        "table",
        [
            ["Claim amount", "Approvers (in order)"],
            ["Up to CNY 5,000", "Direct manager, then Finance review"],
            [
                "CNY 5,000.01 to 20,000",
                "Direct manager, department head, then Finance review",
            ],
            [
                "Above CNY 20,000",
                "Direct manager, department head, CFO, then Finance review",
            ],
        ],
    ),
    (
        "p",
        (
            "Approvers are expected to act within 3 working days. Finance reviews a claim within 5 working days after "
            "it has received the complete documents, including paper originals where required. Incomplete claims "
            "are returned to you in OA with a comment."
        ),
    ),
    ("h1", "9. Payment"),
    (
        "numbered",
        [
            "Approved claims are paid by bank transfer to your salary account in the weekly payment run every Thursday.",
            (
                "Claims that have completed Finance review by 18:00 on Tuesday are paid on the Thursday of the same week; "
                "later claims are paid the following Thursday."
            ),
            "Reimbursements are paid separately from salary and are not shown on your payslip.",
            (
                "Travel advance: for a trip expected to cost more than CNY 5,000, you may request an advance of up to 80% of "
                "the estimated cost. The advance must be settled with a claim within 30 days after you return."
            ),
        ],
    ),
    ("h1", "10. Contacts"),
    (
        "bullets",
        [
            "Finance (claims, payment status): finance@lumentech.example, ext. 8300, 13th floor.",
            "Travel platform and DiDi Enterprise account set-up: admin@lumentech.example, ext. 8200.",
            "OA system problems: it-help@lumentech.example, ext. 8000.",
        ],
    ),
]

EXPENSE_ZH_TITLE = "报销制度（中文摘要）"
EXPENSE_ZH = [
    (
        "p",
        (
            "本页为《费用报销制度》的中文摘要，内容与英文正文一致；如有疑问请联系财务部："
            "finance@lumentech.example，分机 8300。"
        ),
    ),
    ("h2", "一、提交时限"),
    (
        "numbered",
        [
            "所有费用须在费用发生之日起 30 个自然日内在流明 OA 提交报销；出差费用自出差最后一天起算。",
            "超过 30 天、不超过 90 天提交的，须附书面说明并经部门负责人审批；超过 90 天的不予报销。",
            "12 月发生的费用须在次年 1 月 10 日前提交。",
        ],
    ),
    ("h2", "二、发票要求"),
    (
        "numbered",
        [
            '须取得抬头为"流明科技（上海）有限公司"、税号为 91310104MA1FL8LX2Q 的发票；抬头或税号错误的发票不予报销。',
            "电子发票须上传 PDF 或 OFD 原文件，不接受截图；纸质发票须将原件连同报销单封面投入 13 层财务投递箱。",
            "微信、支付宝付款截图不能作为报销凭证。发票遗失的，可填写《发票遗失声明》，每笔最高 200 元，每年最多 2 次。",
        ],
    ),
    ("h2", "三、差旅标准"),
    (
        "bullets",
        [
            "出差须事先在 OA 提交出差申请并经直属主管审批，国际出差另需部门负责人审批；机票、酒店优先通过携程商旅预订。",
            "交通：飞机经济舱、高铁二等座；总监及以上可乘高铁一等座，航程超过 6 小时可乘公务舱。高铁 5 小时以内的行程应乘坐高铁。",
            "住宿上限（每晚）：北京、上海、广州、深圳 600 元；其他内地城市 450 元；港澳台及海外 200 美元。",
            "出差补贴：国内每天 150 元、国际每天 60 美元，含出发和返回当天，无需发票，用于覆盖餐费及零星杂费。",
        ],
    ),
    ("h2", "四、餐费与交通"),
    (
        "bullets",
        [
            "工作日经批准加班至 21:00 以后，可报销晚餐，每人每次不超过 30 元。",
            "工作日经批准加班、21:00 以后离开公司的，可报销打车回家费用，每次不超过 150 元；周末及法定节假日加班不受时间限制，标准相同。",
            "招待客户餐费每人不超过 300 元；预计总额超过 2,000 元的须事先在 OA 提交招待申请。",
            "本地外出办事请使用公司滴滴企业版账号；上下班通勤费用不予报销。",
        ],
    ),
    ("h2", "五、审批与付款"),
    (
        "bullets",
        [
            (
                "5,000 元及以下：直属主管 → 财务审核；5,000 元以上至 20,000 元：直属主管 → 部门负责人 → 财务审核；"
                "20,000 元以上：直属主管 → 部门负责人 → CFO → 财务审核。"
            ),
            "财务部在收齐单据后 5 个工作日内完成审核。",
            "报销款每周四统一转账至员工工资卡；周二 18:00 前完成财务审核的，当周周四到账，否则顺延至下周四。报销款与工资分开发放。",
        ],
    ),
]

BENEFITS_TITLE = "Lumen Tech Employee Benefits Guide 2024"
BENEFITS = [
    (
        "p",
        (
            "This guide summarises the benefits Lumen Tech (Shanghai) Co., Ltd. offers to its employees in 2024. "
            "Benefits questions: benefits@lumentech.example or the HR hotline, ext. 8100. Paid leave is described "
            "separately in the Leave Policy."
        ),
    ),
    ("h1", "1. Social Insurance and Housing Fund (五险一金)"),
    (
        "p",
        (
            '"Wu xian yi jin" means "five insurances and one fund". They are the statutory social benefits that '
            "every employer in China must provide. Lumen Tech enrols you from the month you join."
        ),
    ),
    ("h2", "1.1 What the five insurances and the fund cover"),
    (
        "bullets",
        [
            "Pension insurance: builds your state pension, paid monthly after you reach retirement age.",
            (
                "Medical insurance: covers part of your hospital and outpatient costs at designated hospitals and "
                "pharmacies. In Shanghai, maternity insurance is combined with medical insurance."
            ),
            "Unemployment insurance: provides unemployment benefits if you lose your job involuntarily.",
            (
                "Work-related injury insurance: covers medical costs and compensation for injuries at work or on the "
                "way to and from work. It is paid entirely by the employer."
            ),
            "Maternity insurance: pays the maternity allowance during maternity leave and covers childbirth costs.",
            (
                "Housing provident fund: a savings account for buying or renting a home. Both you and Lumen Tech "
                "contribute each month, and all of it belongs to you."
            ),
        ],
    ),
    ("h2", "1.2 Contribution rates (Shanghai, 2024)"),
    (
        "table",
        [
            ["Item", "Lumen Tech pays", "Employee pays"],
            ["Pension", "16%", "8%"],
            ["Medical (incl. maternity)", "9%", "2%"],
            ["Unemployment", "0.5%", "0.5%"],
            ["Work-related injury", "about 0.2%", "0%"],
            ["Housing provident fund", "7%", "7%"],
        ],
    ),
    (
        "numbered",
        [
            (
                "The contribution base is your monthly base salary, within the minimum and maximum bases published by "
                "the Shanghai government each year. Rates may change when the government adjusts them."
            ),
            "Your share is deducted from your salary every month and is shown on your payslip.",
            (
                "You can check your records in the Suishenban (随申办) app for social insurance and the Shanghai Housing "
                "Provident Fund app for the housing fund, where you can also apply to withdraw funds to pay rent."
            ),
        ],
    ),
    ("h1", "2. Supplementary Health Insurance"),
    (
        "p",
        (
            "On top of statutory medical insurance, Lumen Tech buys a commercial health insurance plan for every "
            "employee. Cover starts on your first day of work, including during probation, and is fully paid by the company."
        ),
    ),
    (
        "table",
        [
            ["Benefit", "Cover"],
            [
                "Outpatient",
                "90% of eligible costs after social insurance, up to CNY 20,000 per year",
            ],
            [
                "Inpatient",
                "100% of eligible costs after social insurance, up to CNY 200,000 per year",
            ],
            ["Dental", "Up to CNY 1,000 per year (cleaning, fillings, extractions)"],
            [
                "Hospital network",
                "Public hospitals in mainland China, including VIP and international wards",
            ],
        ],
    ),
    (
        "numbered",
        [
            (
                "Family cover: you can add your spouse and children under 18 at the group rate of CNY 1,800 per person per "
                "year, paid by you through payroll deduction. Enrol within 30 days of joining or during the annual enrolment "
                "window in December."
            ),
            (
                "Claims: submit receipts and medical records through the insurer's mobile app within 90 days after treatment. "
                "Claims are usually paid within 10 working days."
            ),
            "Direct billing is available at selected private clinics; show your insurance card at registration.",
        ],
    ),
    ("h1", "3. Annual Health Check"),
    (
        "p",
        (
            "Every employee who has passed probation receives one free health check per year at a designated health-check "
            "centre. Checks take place in October and November; HR sends the booking link in September. Family members "
            "can be added at the company's group price at their own cost. Results are sent to you only, not to Lumen Tech."
        ),
    ),
    ("h1", "4. Meal Allowance"),
    (
        "p",
        (
            "All employees receive a meal allowance of CNY 600 per month, paid together with salary. It is pro-rated in "
            "the month you join or leave and is taxable as part of your income. The staff canteen is on floor B1 of the Lumen Building."
        ),
    ),
    ("h1", "5. Health and Wellbeing"),
    ("h2", "5.1 Gym subsidy"),
    (
        "p",
        (
            "Lumen Tech reimburses up to CNY 200 per month (CNY 2,400 per year) of gym, swimming or fitness class fees. "
            "Claim once per quarter in OA under Benefits > Gym Subsidy with the fapiao for your membership. Unused amounts "
            "do not roll over to the next year."
        ),
    ),
    ("h2", "5.2 Sports clubs"),
    (
        "p",
        (
            "The company funds employee clubs for badminton, running, basketball and board games. Each club receives a "
            "budget of CNY 3,000 per quarter for venue fees and equipment."
        ),
    ),
    ("h2", "5.3 Employee Assistance Programme (EAP)"),
    (
        "p",
        (
            "A confidential counselling service is available 24/7 by phone and online for employees and their immediate "
            "family. Each employee can use up to 6 free counselling sessions per year. Lumen Tech never learns who used the service."
        ),
    ),
    ("h1", "6. Gifts and Celebrations"),
    (
        "bullets",
        [
            (
                "Birthday gift: a CNY 300 JD.com e-gift card sent on your birthday, plus a birthday party with cake on the last "
                "Friday of every month for everyone born that month."
            ),
            "Festival gifts: gift boxes for Spring Festival, the Dragon Boat Festival and the Mid-Autumn Festival.",
            "Wedding gift: CNY 1,000 when you get married while working at Lumen Tech.",
            "New baby gift: CNY 1,000 on the birth or adoption of a child.",
            "Service anniversary awards: a commemorative gift at 3, 5 and 10 years of service.",
        ],
    ),
    ("h1", "7. Team Building"),
    (
        "p",
        (
            "Each team has a team-building budget of CNY 500 per person per year for team dinners, outings and activities. "
            "The budget is managed by the team manager and is not paid out to individuals."
        ),
    ),
    ("h1", "8. Learning and Development"),
    (
        "p",
        (
            "Every employee can use up to CNY 3,000 per year for external courses, professional certifications, conference "
            "tickets and books related to their work, with their manager's approval. All employees also have a licence "
            "for the company's online learning platform."
        ),
    ),
    ("h1", "9. Mobile Phone Allowance"),
    (
        "p",
        (
            "Employees in roles that need frequent external communication (sales, customer success and IT on-call staff) "
            "receive a mobile phone allowance of CNY 100 per month with their salary."
        ),
    ),
    ("h1", "10. When Benefits Start"),
    (
        "table",
        [
            ["Benefit", "Starts"],
            ["Social insurance and housing fund", "From the month you join"],
            ["Supplementary health insurance", "From your first day of work"],
            [
                "Meal allowance, mobile phone allowance",
                "From your first month (pro-rated)",
            ],
            ["Gym subsidy, learning budget", "From your first month"],
            ["Annual health check", "After you pass probation"],
        ],
    ),
]

IT_TITLE = "IT 与入职指南"
IT_GUIDE = [
    (
        "p",
        (
            "欢迎加入流明科技！本指南介绍新员工入职第一天的安排，以及电脑、账号、网络和 IT 支持等方面的规定。"
            "入职相关问题请联系人力资源部（hr@lumentech.example，分机 8100），IT 相关问题请联系 IT 服务台"
            "（it-help@lumentech.example，分机 8000）。"
        ),
    ),
    ("h1", "一、入职第一天流程"),
    ("h2", "1.1 报到时间与地点"),
    (
        "p",
        (
            "入职第一天请于 9:30 到上海市徐汇区宜山路 1888 号流明大厦 12 层前台报到，前台会为你发放临时门禁卡，"
            "并通知人力资源部同事接待。"
        ),
    ),
    ("h2", "1.2 需携带的材料"),
    (
        "numbered",
        [
            "身份证原件；",
            "最高学历的毕业证书和学位证书原件；",
            "上一家单位出具的离职证明（应届毕业生无需提供）；",
            "本人名下的招商银行借记卡（用作工资卡，用于发放工资和报销款）；",
            "近 3 个月内的入职体检报告；",
            "1 寸白底证件照 2 张。",
        ],
    ),
    ("h2", "1.3 第一天日程"),
    (
        "table",
        [
            ["时间", "安排"],
            ["9:30–9:45", "12 层前台报到，领取临时门禁卡"],
            ["9:45–10:30", "人力资源部办理入职手续，签订劳动合同"],
            ["10:30–12:00", "新员工入职培训：公司介绍、规章制度、信息安全"],
            ["12:00–13:30", "与入职伙伴（Buddy）共进午餐，费用由公司承担"],
            ["13:30–14:30", "到 IT 服务台领取电脑、开通账号"],
            ["14:30 以后", "直属主管介绍团队成员和试用期工作目标"],
        ],
    ),
    (
        "p",
        (
            "入职当天下午会拍摄工牌照片，正式工牌在第二个工作日到 12 层前台领取。每位新员工都会被安排一位入职伙伴，"
            "在试用期内帮助你熟悉环境和工作流程。"
        ),
    ),
    ("h1", "二、电脑领取与使用"),
    (
        "numbered",
        [
            (
                "入职当天到 12 层 IT 服务台（工位区东侧）领取电脑。研发、设计岗位标配 14 英寸 MacBook Pro（M3 Pro，36GB 内存）；"
                "其他岗位标配 ThinkPad T14（i7 处理器，32GB 内存）。每人另配 27 英寸外接显示器 1 台。"
            ),
            "领取时须签署《IT 资产领用确认单》。电脑属于公司资产，使用期间由员工负责妥善保管。",
            "电脑的标准更换周期为 4 年。因工作需要提前更换或升级配置的，须在 OA「IT 服务-设备申请」提交申请并经部门负责人审批。",
            "不得私自安装未经授权的软件。需要新软件时，请在 OA「IT 服务-软件申请」提交，由 IT 统一安装正版软件。",
            "电脑丢失或被盗的，须在 24 小时内报告 IT 服务台和行政部，以便远程锁定设备。",
            "离职时须在最后工作日将电脑、显示器及配件归还 IT 服务台，IT 签收后方可办理离职手续。",
        ],
    ),
    ("h1", "三、账号开通"),
    (
        "numbered",
        [
            "IT 会在你入职前根据人力资源部提交的信息提前开通账号。入职当天，初始密码会以短信形式发送到你登记的手机号。",
            "企业邮箱格式为「名.姓@lumentech.example」，例如 zhang.wei@lumentech.example；如有重名，会在名字后加数字。",
            "同一账号（域账号）可登录电脑、企业邮箱、流明 OA、飞书和 VPN。",
            "首次登录时必须修改初始密码，并在手机上安装 Microsoft Authenticator 完成多因素认证（MFA）绑定。",
            "GitLab、Jira、Confluence 等业务系统的权限，由直属主管在 OA「IT 服务-权限申请」中为你申请，一般 1 个工作日内开通。",
        ],
    ),
    ("h1", "四、VPN 远程访问"),
    (
        "numbered",
        [
            "在公司网络以外访问内网系统（如 GitLab、Jira、内部文档库）时，须使用公司 VPN。流明 OA 和企业邮箱可直接通过互联网访问，无需 VPN。",
            "VPN 客户端为 LumenConnect，已预装在公司配发的电脑上；服务器地址为 vpn.lumentech.example。",
            "登录时使用域账号和密码，并通过 Microsoft Authenticator 进行 MFA 确认。",
            "VPN 仅允许在公司配发的电脑上使用，个人电脑不能连接公司 VPN。",
            "VPN 连接持续 12 小时后会自动断开，需要重新登录。",
        ],
    ),
    ("h1", "五、密码策略"),
    (
        "bullets",
        [
            "密码长度至少 12 位，须包含大写字母、小写字母、数字、特殊字符中的至少 3 类。",
            "密码每 90 天必须更换一次，系统会提前 14 天发送邮件提醒；新密码不得与最近 5 次使用过的密码相同。",
            "连续输错密码 5 次，账号将被锁定 15 分钟，之后自动解锁。",
            "忘记密码时，可通过自助服务网站 password.lumentech.example 用手机验证码重置，或联系 IT 服务台。",
            "不得与任何人（包括 IT 人员）共享密码。IT 人员不会通过邮件或电话索要你的密码。",
            "离开座位时请锁定电脑（Windows：Win+L；Mac：Control+Command+Q）；电脑 10 分钟无操作会自动锁屏。",
        ],
    ),
    ("h1", "六、Wi-Fi 网络"),
    (
        "table",
        [
            ["网络名称", "适用对象", "连接方式"],
            [
                "Lumen-Staff",
                "员工（公司电脑和个人手机）",
                "公司电脑自动连接；个人手机使用域账号和密码登录",
            ],
            [
                "Lumen-Guest",
                "访客",
                "密码张贴在 12 层前台，每周一更新；每次连接有效期 24 小时，限速 20 Mbps",
            ],
        ],
    ),
    (
        "p",
        "在公司 Wi-Fi（Lumen-Staff）范围内才能使用流明 OA App 打卡。请勿在办公区私自架设无线路由器或热点。",
    ),
    ("h1", "七、IT 报修与支持"),
    ("h2", "7.1 报修方式"),
    (
        "numbered",
        [
            "在流明 OA「IT 服务-报修工单」提交（推荐，便于跟踪处理进度）；",
            "发送邮件至 it-help@lumentech.example；",
            "拨打 IT 服务台分机 8000；",
            "直接前往 12 层 IT 服务台（工位区东侧），服务时间为工作日 9:30–19:00。",
        ],
    ),
    ("h2", "7.2 响应时间"),
    (
        "bullets",
        [
            "普通工单：4 个工作小时内响应，原则上 1 个工作日内解决。",
            "紧急问题（无法登录、电脑无法使用导致完全无法办公、疑似信息安全事件）：30 分钟内响应。",
            "非工作时间的紧急问题，请拨打分机 8000 后按 9 转接 IT 值班人员。",
            "电脑需要送修时，IT 服务台可提供备用电脑，保证你在维修期间正常工作。",
        ],
    ),
    ("h2", "7.3 信息安全事件"),
    (
        "p",
        (
            "收到可疑的钓鱼邮件、发现账号异常登录或电脑中毒时，请立即断开网络，并转发邮件或报告至 "
            "security@lumentech.example，同时拨打分机 8000。"
        ),
    ),
    ("h1", "八、试用期"),
    (
        "numbered",
        [
            "试用期一般为 3 个月；经理级及以上岗位的试用期为 6 个月。具体以劳动合同约定为准。",
            "试用期工资为劳动合同约定工资的 100%，试用期内同样享受五险一金和补充商业医疗保险。",
            "年假自入职之日起累积，但须试用期满转正后方可使用；年度体检在转正后享受。",
            (
                "转正流程：试用期满前 2 周，在 OA「人事服务-转正申请」提交转正申请和试用期工作总结；直属主管进行评估，"
                "人力资源部审核并与你进行转正面谈。审核通过后，转正日期为试用期满的次日。"
            ),
            "试用期内离职须提前 3 天书面通知；转正后离职须提前 30 天书面通知。",
        ],
    ),
]


# ---------------------------------------------------------------------------
# PDF (fpdf2)
# ---------------------------------------------------------------------------


def find_cjk_font() -> str | None:
    env = os.environ.get("KB_CJK_FONT")
    candidates = ([env] if env else []) + CJK_FONT_CANDIDATES
    for c in candidates:
        if c and Path(c).is_file():
            return c
    return None


def _ttc_to_ttf(path: str) -> str:
    """fpdf2 wants a single font; extract face 0 of a .ttc collection into a temp .ttf."""
    if not path.lower().endswith(".ttc"):
        return path
    from fontTools.ttLib import TTCollection  # fontTools is a dependency of fpdf2

    out = Path(tempfile.gettempdir()) / (Path(path).stem + "-0.ttf")
    if not out.exists():
        TTCollection(path).fonts[0].save(str(out))
    return str(out)


def make_pdf(out_path: Path) -> bool:
    from fpdf import FPDF
    from fpdf.enums import WrapMode, XPos, YPos

    cjk = find_cjk_font()

    class PolicyPDF(FPDF):
        def footer(self):
            self.set_y(-15)
            self.set_font("helvetica", size=8)
            self.set_text_color(110, 110, 110)
            self.cell(
                0,
                10,
                f"Lumen Tech - Expense Reimbursement Policy v3.0 - page {self.page_no()}/{{nb}}",
                align="C",
            )
            self.set_text_color(0, 0, 0)

    pdf = PolicyPDF(format="A4")
    pdf.set_creation_date(FIXED_DATE)
    pdf.set_title(EXPENSE_TITLE)
    pdf.set_author("Lumen Tech Finance Department")
    pdf.set_subject("Expense reimbursement policy")
    pdf.set_lang("en")
    pdf.set_margins(20, 20, 20)
    pdf.set_auto_page_break(auto=True, margin=20)
    pdf.add_page()

    def para(h: float, text: str, wrap: WrapMode = WrapMode.WORD) -> None:
        pdf.multi_cell(0, h, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT, align="L", wrapmode=wrap)

    def render(blocks, font: str):
        # CJK text has no spaces between words: wrap it at any character.
        wrap = WrapMode.WORD if font == "helvetica" else WrapMode.CHAR
        for kind, body in blocks:
            if kind == "h1":
                if pdf.get_y() > 240:
                    pdf.add_page()
                pdf.ln(3)
                pdf.start_section(body, level=0)
                pdf.set_font(font, style="B" if font == "helvetica" else "", size=14)
                pdf.set_text_color(20, 60, 130)
                para(8, body, wrap)
                pdf.set_text_color(0, 0, 0)
                pdf.ln(1)
            elif kind == "h2":
                if pdf.get_y() > 250:
                    pdf.add_page()
                pdf.ln(1)
                pdf.start_section(body, level=1)
                pdf.set_font(font, style="B" if font == "helvetica" else "", size=12)
                para(7, body, wrap)
            elif kind == "p":
                pdf.set_font(font, size=10.5)
                para(5.6, body, wrap)
                pdf.ln(2)
            elif kind in ("bullets", "numbered"):
                pdf.set_font(font, size=10.5)
                for i, item in enumerate(body, 1):
                    marker = f"{i}." if kind == "numbered" else "-"
                    pdf.set_x(pdf.l_margin + 2)
                    pdf.cell(7, 5.6, marker)
                    para(5.6, item, wrap)
                    pdf.ln(0.8)
                pdf.ln(1.5)
            elif kind == "table":
                pdf.set_font(font, size=10)
                ncol = len(body[0])
                widths = (55, 115) if ncol == 2 else tuple([170 / ncol] * ncol)
                with pdf.table(col_widths=widths, line_height=6.5, text_align="LEFT") as table:
                    for row_data in body:
                        row = table.row()
                        for cell in row_data:
                            row.cell(cell)
                pdf.ln(3)
            else:  # pragma: no cover - programming error
                raise ValueError(kind)

    # --- English policy -------------------------------------------------------
    pdf.set_font("helvetica", style="B", size=20)
    para(10, EXPENSE_TITLE)
    pdf.set_font("helvetica", size=10)
    pdf.set_text_color(90, 90, 90)
    for line in EXPENSE_META:
        para(5.5, line)
    pdf.set_text_color(0, 0, 0)
    pdf.ln(4)
    render(EXPENSE_EN, "helvetica")

    # --- Chinese summary page ---------------------------------------------------
    if cjk:
        pdf.add_font("cjk", "", _ttc_to_ttf(cjk))
        pdf.add_page()
        pdf.start_section(EXPENSE_ZH_TITLE, level=0)
        pdf.set_font("cjk", size=18)
        pdf.set_text_color(20, 60, 130)
        para(10, EXPENSE_ZH_TITLE, WrapMode.CHAR)
        pdf.set_text_color(0, 0, 0)
        pdf.ln(2)
        render(EXPENSE_ZH, "cjk")
    else:
        print(
            "warning: no CJK TrueType font found (set KB_CJK_FONT); expense-reimbursement.pdf is English-only",
            file=sys.stderr,
        )

    pdf.output(str(out_path))
    return bool(cjk)


# ---------------------------------------------------------------------------
# DOCX (python-docx)
# ---------------------------------------------------------------------------


def _set_east_asian_font(style, name: str) -> None:
    from docx.oxml.ns import qn

    rpr = style.element.get_or_add_rPr()
    rfonts = rpr.find(qn("w:rFonts"))
    if rfonts is None:
        rfonts = rpr.makeelement(qn("w:rFonts"), {})
        rpr.append(rfonts)
    rfonts.set(qn("w:eastAsia"), name)


def make_docx(out_path: Path, title: str, blocks, *, chinese: bool) -> None:
    from docx import Document
    from docx.shared import Pt

    doc = Document()
    props = doc.core_properties
    props.title = title
    props.author = "Lumen Tech HR" if not chinese else "流明科技人力资源部"
    props.created = FIXED_DATE.replace(tzinfo=None)
    props.modified = FIXED_DATE.replace(tzinfo=None)
    props.last_modified_by = props.author
    props.language = "zh-CN" if chinese else "en-US"

    normal = doc.styles["Normal"]
    normal.font.size = Pt(10.5)
    if chinese:
        for style_name in (
            "Normal",
            "Title",
            "Heading 1",
            "Heading 2",
            "List Number",
            "List Bullet",
        ):
            _set_east_asian_font(doc.styles[style_name], "Microsoft YaHei")

    doc.add_heading(title, level=0)
    if chinese:
        doc.add_paragraph("流明科技（上海）有限公司　人力资源部 / IT 部　｜　2024 年 1 月版")
    else:
        doc.add_paragraph("Lumen Tech (Shanghai) Co., Ltd. - Human Resources - January 2024 edition")

    for kind, body in blocks:
        if kind == "h1":
            doc.add_heading(body, level=1)
        elif kind == "h2":
            doc.add_heading(body, level=2)
        elif kind == "p":
            doc.add_paragraph(body)
        elif kind == "bullets":
            for item in body:
                doc.add_paragraph(item, style="List Bullet")
        elif kind == "numbered":
            # Word's "List Number" style continues numbering across lists, so write
            # the numbers explicitly to keep each list starting at 1.
            for i, item in enumerate(body, 1):
                doc.add_paragraph(f"{i}. {item}")
        elif kind == "table":
            table = doc.add_table(rows=len(body), cols=len(body[0]))
            table.style = "Table Grid"
            for r, row_data in enumerate(body):
                for c, text in enumerate(row_data):
                    cell = table.cell(r, c)
                    cell.text = text
                    if r == 0:
                        for run in cell.paragraphs[0].runs:
                            run.bold = True
            doc.add_paragraph()
        else:  # pragma: no cover - programming error
            raise ValueError(kind)

    doc.save(str(out_path))
    _normalize_zip(out_path)


def _normalize_zip(path: Path) -> None:
    """Rewrite a .docx (zip) with fixed entry timestamps so regeneration is byte-identical."""
    import zipfile

    with zipfile.ZipFile(path) as zin:
        entries = [(info, zin.read(info.filename)) for info in zin.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zout:
        for info, data in entries:
            fixed = zipfile.ZipInfo(info.filename, date_time=FIXED_DATE.timetuple()[:6])
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = info.external_attr
            zout.writestr(fixed, data)


# ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="output folder (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    has_cjk = make_pdf(out / "expense-reimbursement.pdf")
    make_docx(out / "benefits.docx", BENEFITS_TITLE, BENEFITS, chinese=False)
    make_docx(out / "IT与入职指南.docx", IT_TITLE, IT_GUIDE, chinese=True)

    for name in ("expense-reimbursement.pdf", "benefits.docx", "IT与入职指南.docx"):
        size = (out / name).stat().st_size
        print(f"wrote {out / name} ({size / 1024:.1f} KB)")
    if not has_cjk:
        print("note: the PDF has no Chinese page", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
